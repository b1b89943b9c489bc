//! The depth and complexity limits, and the introspection queries clients send passing
//! them.

use reqwest::StatusCode;
use serde_json::json;

use super::{get, get_query_path};
use crate::backend_tests;
use crate::fixtures::{full_options_introspection_query, standard_introspection_query};
use crate::helpers::{Backend, spawn_app, spawn_app_with};

/// Asserts an introspection result with no errors that names the root types.
fn assert_introspection_ok(r: &crate::helpers::Gql) {
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body["errors"].is_null(),
        "introspection failed: {}",
        r.body["errors"]
    );
    let schema = &r.body["data"]["__schema"];
    assert_eq!(schema["queryType"]["name"], "Query");
    assert_eq!(schema["mutationType"]["name"], "Mutation");
    assert!(schema["subscriptionType"].is_null());
    let types = schema["types"].as_array().expect("types");
    for name in ["User", "AuthPayload", "RegisterInput", "LoginInput"] {
        assert!(types.iter().any(|t| t["name"] == name), "no type {name}");
    }
}

async fn a_query_deeper_than_the_limit_is_refused_without_a_server_error(backend: Backend) {
    let app = spawn_app(backend).await;
    // 20 levels of ofType under __schema/types: deeper than the default limit of 16.
    let mut query = String::from("name");
    for _ in 0..20 {
        query = format!("ofType {{ {query} }}");
    }
    let query = format!("{{ __schema {{ types {{ {query} }} }} }}");
    let r = app.gql(&query, json!({}), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body["data"].is_null(),
        "the deep query ran: {:.300}",
        r.body
    );
    let message = r.body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.to_lowercase().contains("deep"), "{}", r.body);
    assert_ne!(r.code(), Some("INTERNAL_SERVER_ERROR"));

    let app = spawn_app_with(backend, |s| s.graphql.max_depth = 2).await;
    let r = app
        .gql("{ __schema { types { name } } }", json!({}), None)
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body["data"].is_null(), "{}", r.body);
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase()
            .contains("deep"),
        "{}",
        r.body
    );
    let ok = app.gql("{ __typename }", json!({}), None).await;
    assert_eq!(ok.body, json!({"data": {"__typename": "Query"}}));
}

/// `{ __type(name: "User") { ofType { … name … } } }` with `of_types` levels of `ofType`:
/// a selection `of_types + 2` deep.
fn of_type_chain(of_types: usize) -> String {
    let mut query = String::from("name");
    for _ in 0..of_types {
        query = format!("ofType {{ {query} }}");
    }
    format!("{{ __type(name: \"User\") {{ {query} }} }}")
}

/// The parser's own bound is where `GRAPHQL_MAX_DEPTH` stops mattering, as the start-up
/// warning says (`DEEPEST_PARSED_SELECTION`): at that depth a query runs, one deeper is
/// refused whatever the setting, so a larger setting allows nothing more.
async fn the_deepest_selection_the_parser_takes_is_the_documented_one(backend: Backend) {
    use auth_server::config::DEEPEST_PARSED_SELECTION as DEEPEST;
    let app = spawn_app_with(backend, |s| {
        s.graphql.max_depth = 1000;
        s.graphql.max_complexity = 100_000;
    })
    .await;

    let deepest = app.gql(&of_type_chain(DEEPEST - 2), json!({}), None).await;
    let deeper = app.gql(&of_type_chain(DEEPEST - 1), json!({}), None).await;

    assert!(deepest.body["errors"].is_null(), "{}", deepest.body);
    assert_eq!(deepest.body["data"]["__type"]["ofType"], json!(null));
    assert!(deeper.body["data"].is_null(), "{}", deeper.body);
    let message = deeper.body["errors"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("recursion depth"), "{}", deeper.body);
    assert_ne!(deeper.code(), Some("INTERNAL_SERVER_ERROR"));
}

async fn a_query_more_complex_than_the_limit_is_refused_without_a_server_error(backend: Backend) {
    let app = spawn_app(backend).await;
    // 300 aliased `me { id }`: 600 fields, over the default complexity limit of 500.
    let fields: Vec<String> = (0..300).map(|i| format!("m{i}: me {{ id }}")).collect();
    let r = app
        .gql(&format!("{{ {} }}", fields.join(" ")), json!({}), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["data"].is_null(), "the complex query ran");
    let message = r.body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.to_lowercase().contains("complex"), "{}", r.body);
    // 400 under the GraphQL-over-HTTP media type: nothing was executed.
    let r = app
        .post_json(
            json!({"query": format!("{{ {} }}", fields.join(" "))}),
            None,
            &[("accept", "application/graphql-response+json")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
}

async fn graphiqls_standard_introspection_query_passes_the_default_limits(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app
        .post_json(
            json!({"query": standard_introspection_query(), "operationName": "IntrospectionQuery"}),
            None,
            &[],
        )
        .await;
    assert_introspection_ok(&r);
    // GraphiQL may also send it over GET.
    let r = get(
        &app,
        &get_query_path(&standard_introspection_query(), ""),
        &[],
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.json()["errors"].is_null(), "{:.500}", r.text);
}

async fn an_introspection_query_with_every_option_passes_the_default_limits(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app
        .post_json(
            json!({"query": full_options_introspection_query()}),
            None,
            &[],
        )
        .await;
    assert_introspection_ok(&r);
}

backend_tests!(
    a_query_deeper_than_the_limit_is_refused_without_a_server_error,
    a_query_more_complex_than_the_limit_is_refused_without_a_server_error,
    graphiqls_standard_introspection_query_passes_the_default_limits,
    an_introspection_query_with_every_option_passes_the_default_limits,
    the_deepest_selection_the_parser_takes_is_the_documented_one,
);
