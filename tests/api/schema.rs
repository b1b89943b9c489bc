//! The committed `schema.graphql` and the live schema both match the code and the contract.

use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, spawn_app};

const STALE: &str =
    "schema.graphql is stale; regenerate it with `cargo run -- schema > schema.graphql`";

fn committed_schema() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path} ({e}); {STALE}"))
}

#[test]
fn the_committed_schema_graphql_equals_the_schema_of_the_code() {
    let committed = committed_schema();
    let generated = auth_server::graphql::sdl();
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || committed.lines().count().min(generated.lines().count()) + 1,
                |i| i + 1,
            );
        panic!(
            "{STALE}\nfirst difference at line {line}:\n  committed: {:?}\n  generated: {:?}",
            committed.lines().nth(line - 1).unwrap_or("<end of file>"),
            generated.lines().nth(line - 1).unwrap_or("<end of file>"),
        );
    }
}

#[test]
fn the_committed_schema_graphql_declares_the_contract_operations() {
    let committed = committed_schema();
    let normalized: String = committed.split_whitespace().collect::<Vec<_>>().join(" ");
    for decl in [
        "me: User!",
        "register(input: RegisterInput!): AuthPayload!",
        "login(input: LoginInput!): AuthPayload!",
        "refreshToken(refreshToken: String!): AuthPayload!",
        "logout(refreshToken: String, allSessions: Boolean! = false): Boolean!",
    ] {
        assert!(normalized.contains(decl), "schema.graphql lacks `{decl}`");
    }
}

/// `String!`, `[User!]!`, ... from an introspected type reference.
fn render(ty: &Value) -> String {
    match ty["kind"].as_str() {
        Some("NON_NULL") => format!("{}!", render(&ty["ofType"])),
        Some("LIST") => format!("[{}]", render(&ty["ofType"])),
        _ => ty["name"].as_str().expect("named type").to_owned(),
    }
}

/// `name(arg: Type = default, ...): Type` or `name: Type = default`.
fn signature(field: &Value) -> String {
    let name = field["name"].as_str().expect("name");
    let args: Vec<String> = field["args"]
        .as_array()
        .map(|args| args.iter().map(signature).collect())
        .unwrap_or_default();
    let args = if args.is_empty() {
        String::new()
    } else {
        format!("({})", args.join(", "))
    };
    let default = match field["defaultValue"].as_str() {
        Some(d) => format!(" = {d}"),
        None => String::new(),
    };
    format!("{name}{args}: {}{default}", render(&field["type"]))
}

const TYPE_REF: &str = "fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }";

async fn the_live_schema_exposes_the_contract_operations_and_types(backend: Backend) {
    let app = spawn_app(backend).await;
    let query = format!(
        "query($name: String!) {{ __type(name: $name) {{ kind \
           fields {{ name args {{ name type {{ ...T }} defaultValue }} type {{ ...T }} }} \
           inputFields {{ name type {{ ...T }} defaultValue }} }} }} {TYPE_REF}"
    );
    let expected: [(&str, &str, &[&str]); 6] = [
        ("Query", "OBJECT", &["me: User!"]),
        (
            "Mutation",
            "OBJECT",
            &[
                "register(input: RegisterInput!): AuthPayload!",
                "login(input: LoginInput!): AuthPayload!",
                "refreshToken(refreshToken: String!): AuthPayload!",
                "logout(refreshToken: String, allSessions: Boolean! = false): Boolean!",
            ],
        ),
        (
            "RegisterInput",
            "INPUT_OBJECT",
            &["email: String!", "password: String!", "username: String"],
        ),
        (
            "LoginInput",
            "INPUT_OBJECT",
            &["email: String", "username: String", "password: String!"],
        ),
        (
            "AuthPayload",
            "OBJECT",
            &[
                "accessToken: String!",
                "refreshToken: String!",
                "tokenType: String!",
                "expiresIn: Int!",
                "refreshExpiresIn: Int!",
                "user: User!",
            ],
        ),
        (
            "User",
            "OBJECT",
            &[
                "id: ID!",
                "email: String!",
                "username: String",
                "createdAt: DateTime!",
                "updatedAt: DateTime!",
            ],
        ),
    ];
    for (name, kind, members) in expected {
        let r = app.gql(&query, json!({"name": name}), None).await;
        assert!(
            r.body["errors"].is_null(),
            "introspection of {name} failed: {}",
            r.body
        );
        let ty = &r.body["data"]["__type"];
        assert_eq!(ty["kind"], kind, "{name}: {ty}");
        let list = if kind == "INPUT_OBJECT" {
            &ty["inputFields"]
        } else {
            &ty["fields"]
        };
        let actual: Vec<String> = list
            .as_array()
            .unwrap_or_else(|| panic!("{name} has no members: {ty}"))
            .iter()
            .map(signature)
            .collect();
        for member in members {
            assert!(
                actual.iter().any(|a| a == member),
                "{name} lacks `{member}`; it has {actual:?}"
            );
        }
        if kind == "INPUT_OBJECT" {
            // A new required input field would break every existing client.
            let extra_required: Vec<&String> = actual
                .iter()
                .filter(|a| !members.contains(&a.as_str()) && a.ends_with('!'))
                .collect();
            assert!(
                extra_required.is_empty(),
                "{name} gained required fields {extra_required:?}"
            );
        }
    }

    let r = app
        .gql(
            "{ __schema { queryType { name } mutationType { name } subscriptionType { name } } }",
            json!({}),
            None,
        )
        .await;
    assert_eq!(
        r.body["data"]["__schema"],
        json!({"queryType": {"name": "Query"}, "mutationType": {"name": "Mutation"}, "subscriptionType": null})
    );
}

backend_tests!(the_live_schema_exposes_the_contract_operations_and_types);
