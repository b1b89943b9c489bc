//! What the server exposes to people exploring the API: the GraphiQL page and GraphQL
//! introspection, off by default under `APP_ENV=production` and on in development, each
//! switched by its own variable (`GRAPHIQL_ENABLED`, `GRAPHQL_INTROSPECTION`); the pinned
//! CDN assets of the page carry SRI hashes; `auth-server schema` ignores both switches.
//!
//! The settings are read by `Settings::from_lookup` from variables, as the binary reads
//! them, so these tests cover the defaults as an operator gets them.

use std::collections::HashMap;

use auth_server::config::Settings;
use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{ACCESS_SECRET, Backend, Gql, REFRESH_SECRET, TestApp, spawn_app_with};

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
const SCHEMA_QUERY: &str = "{ __schema { queryType { name } types { name } } }";
/// A field name one letter off `email`: with introspection on, the error suggests it.
const MISSPELT: &str = "{ me { emai } }";
const TYPE_QUERY: &str = "query($name: String!) { __type(name: $name) { name fields { name } } }";

/// The server with the settings `Settings::from_lookup` reads from `vars` (plus valid
/// secrets and an SMTP_URL), on the test's database, a free port and cheap bcrypt.
async fn spawn_with_env(backend: Backend, vars: &[(&str, &str)]) -> TestApp {
    let mut env: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    // The legacy HS256 secret: production's stored keys would need a `keys rotate` first,
    // and these tests are about the exposure of the schema, not keys.
    env.insert("JWT_ALGORITHM".into(), "HS256".into());
    env.insert("JWT_ACCESS_SECRET".into(), ACCESS_SECRET.into());
    env.insert("JWT_REFRESH_SECRET".into(), REFRESH_SECRET.into());
    // Production refuses to start without a mail server; none is contacted here.
    env.insert("SMTP_URL".into(), "smtp://127.0.0.1:2525".into());
    let read = Settings::from_lookup(|k| env.get(k).cloned()).expect("valid settings");
    spawn_app_with(backend, move |s| {
        let database = s.database.clone();
        *s = read;
        s.database = database;
        s.port = 0;
        s.passwords.bcrypt_cost = 4;
    })
    .await
}

/// `GET /graphql` as a browser asks for a page: status, content type and body.
async fn open_in_browser(app: &TestApp) -> (StatusCode, String, String) {
    let resp = app
        .client
        .get(app.url("/graphql"))
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .expect("request sent");
    let status = resp.status();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, content_type, resp.text().await.expect("body"))
}

/// POSTs `query` asking for `application/graphql-response+json` (request errors are 400).
async fn post(app: &TestApp, query: &str, variables: Value) -> Gql {
    app.post_json(
        json!({"query": query, "variables": variables}),
        None,
        &[("accept", GRAPHQL_RESPONSE_JSON)],
    )
    .await
}

/// GETs `/graphql?query=...`.
async fn get_query(app: &TestApp, query: &str) -> Gql {
    let resp = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", query)])
        .header("accept", GRAPHQL_RESPONSE_JSON)
        .send()
        .await
        .expect("request sent");
    Gql::read(resp).await
}

/// Asserts the GraphiQL page is served, as a page.
async fn assert_page_served(app: &TestApp) {
    let (status, content_type, body) = open_in_browser(app).await;
    assert_eq!(status, StatusCode::OK, "{body:.200}");
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(body.contains("graphiql@"), "{body:.200}");
}

/// Asserts no page is served: the same 400 as any GET without a query, as JSON, with
/// nothing that names or loads GraphiQL.
async fn assert_no_page(app: &TestApp) {
    let (status, content_type, body) = open_in_browser(app).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body:.200}");
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let body: Value = serde_json::from_str(&body).expect("a JSON error");
    assert_eq!(
        body,
        json!({"errors": [{"message": "missing the `query` parameter"}]})
    );
    assert!(!body.to_string().to_lowercase().contains("graphiql"));
}

/// Asserts introspection answers, over POST and GET.
async fn assert_introspection_answers(app: &TestApp) {
    let r = post(app, SCHEMA_QUERY, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["errors"].is_null(), "{}", r.body);
    assert_eq!(r.body["data"]["__schema"]["queryType"]["name"], "Query");
    let r = post(app, TYPE_QUERY, json!({"name": "User"})).await;
    assert_eq!(r.body["data"]["__type"]["name"], "User", "{}", r.body);
    let r = get_query(app, SCHEMA_QUERY).await;
    assert_eq!(r.body["data"]["__schema"]["queryType"]["name"], "Query");
    let r = post(app, MISSPELT, json!({})).await;
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("Did you mean \"email\"?")),
        "{}",
        r.body
    );
}

/// Asserts one introspection request is refused as a request error: 400, no `data`, one
/// error that says introspection is disabled and names the field asked for.
fn assert_refused(r: &Gql, field: &str) {
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.get("data").is_none(), "{}", r.body);
    let errors = r.body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{}", r.body);
    let message = errors[0]["message"].as_str().expect("message");
    assert!(
        message.contains("introspection is disabled") && message.contains(field),
        "{message}"
    );
    assert!(!r.body.to_string().contains("User"), "{}", r.body);
}

/// Asserts introspection is refused over POST and GET, inline, in a fragment and with
/// variables, the same each time (a text the document cache has seen is refused again).
async fn assert_introspection_refused(app: &TestApp) {
    for _ in 0..2 {
        assert_refused(&post(app, SCHEMA_QUERY, json!({})).await, "__schema");
        assert_refused(&get_query(app, SCHEMA_QUERY).await, "__schema");
        assert_refused(
            &post(app, TYPE_QUERY, json!({"name": "User"})).await,
            "__type",
        );
        assert_refused(
            &post(
                app,
                "query Q { ...Schema } fragment Schema on Query { __schema { types { name } } }",
                json!({}),
            )
            .await,
            "__schema",
        );
    }
    // Over `application/json` (legacy clients) the same error comes with a 200.
    let r = app
        .post_json(json!({"query": SCHEMA_QUERY}), None, &[])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.get("data").is_none(), "{}", r.body);
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("introspection is disabled")),
        "{}",
        r.body
    );
    // A misspelt field gets no "Did you mean" that would give the schema away.
    let r = post(app, MISSPELT, json!({})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(
        r.body["errors"][0]["message"], "Unknown field \"emai\" on type \"User\".",
        "{}",
        r.body
    );
}

/// Asserts `__typename` and the API itself still work.
async fn assert_api_works(app: &TestApp, email: &str) {
    let r = post(app, "{ __typename }", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body, json!({"data": {"__typename": "Query"}}));
    let r = get_query(app, "query { __typename }").await;
    assert_eq!(r.body, json!({"data": {"__typename": "Query"}}));
    let tokens = app.register_ok(email).await;
    let r = post(
        app,
        "mutation($t: String!) { refreshToken(refreshToken: $t) { __typename user { __typename email } } }",
        json!({"t": tokens.refresh}),
    )
    .await;
    assert_eq!(
        r.body,
        json!({"data": {"refreshToken": {"__typename": "AuthPayload", "user": {"__typename": "User", "email": email}}}})
    );
    assert!(app.me_ok(&tokens.access).await);
}

async fn in_production_by_default_there_is_no_graphiql_page_and_introspection_is_refused(
    backend: Backend,
) {
    let app = spawn_with_env(backend, &[("APP_ENV", "production")]).await;
    assert_no_page(&app).await;
    assert_introspection_refused(&app).await;
    assert_api_works(&app, "prod-defaults@example.com").await;
    let health = app
        .client
        .get(app.url("/health"))
        .send()
        .await
        .expect("sent");
    assert_eq!(health.status(), StatusCode::OK);
}

async fn in_production_graphiql_enabled_serves_the_page_and_introspection_stays_off(
    backend: Backend,
) {
    let app = spawn_with_env(
        backend,
        &[("APP_ENV", "production"), ("GRAPHIQL_ENABLED", "true")],
    )
    .await;
    assert_page_served(&app).await;
    assert_introspection_refused(&app).await;
}

async fn in_production_graphql_introspection_enabled_answers_it_and_serves_no_page(
    backend: Backend,
) {
    let app = spawn_with_env(
        backend,
        &[("APP_ENV", "production"), ("GRAPHQL_INTROSPECTION", "true")],
    )
    .await;
    assert_no_page(&app).await;
    assert_introspection_answers(&app).await;
}

async fn in_production_both_switches_on_serve_the_page_and_answer_introspection(backend: Backend) {
    let app = spawn_with_env(
        backend,
        &[
            ("APP_ENV", "production"),
            ("GRAPHIQL_ENABLED", "on"),
            ("GRAPHQL_INTROSPECTION", "1"),
        ],
    )
    .await;
    assert_page_served(&app).await;
    assert_introspection_answers(&app).await;
    assert_api_works(&app, "prod-both-on@example.com").await;
}

async fn in_development_by_default_the_page_is_served_and_introspection_answers(backend: Backend) {
    let app = spawn_with_env(backend, &[("APP_ENV", "development")]).await;
    assert_page_served(&app).await;
    assert_introspection_answers(&app).await;
}

async fn in_development_graphiql_disabled_serves_no_page_and_introspection_still_answers(
    backend: Backend,
) {
    let app = spawn_with_env(backend, &[("GRAPHIQL_ENABLED", "false")]).await;
    assert_no_page(&app).await;
    assert_introspection_answers(&app).await;
}

async fn in_development_graphql_introspection_disabled_refuses_it_and_the_page_stays(
    backend: Backend,
) {
    let app = spawn_with_env(
        backend,
        &[("APP_ENV", "development"), ("GRAPHQL_INTROSPECTION", "off")],
    )
    .await;
    assert_page_served(&app).await;
    assert_introspection_refused(&app).await;
    assert_api_works(&app, "dev-no-introspection@example.com").await;
}

/// The value of `name="..."` in one tag's text.
fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    tag[start..].split('"').next()
}

async fn the_graphiql_page_pins_every_external_script_and_stylesheet_by_an_sri_hash(
    backend: Backend,
) {
    let app = spawn_with_env(backend, &[("APP_ENV", "development")]).await;
    let (status, _, page) = open_in_browser(&app).await;
    assert_eq!(status, StatusCode::OK);
    let mut external = Vec::new();
    for tag in page.split('<').skip(1) {
        let tag = tag.split('>').next().unwrap_or_default();
        let url = match tag.split_whitespace().next() {
            Some("script") => attribute(tag, "src"),
            Some("link") => attribute(tag, "href"),
            _ => None,
        };
        let Some(url) = url else { continue };
        let integrity = attribute(tag, "integrity")
            .unwrap_or_else(|| panic!("no integrity attribute on <{tag}>"));
        let digest = integrity
            .strip_prefix("sha384-")
            .unwrap_or_else(|| panic!("not a sha384 hash: {integrity}"));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(digest)
            .unwrap_or_else(|e| panic!("{integrity}: {e}"));
        assert_eq!(bytes.len(), 48, "{integrity}");
        // Without CORS mode a cross-origin response cannot be checked, and is refused.
        assert_eq!(attribute(tag, "crossorigin"), Some("anonymous"), "<{tag}>");
        external.push(url.to_owned());
    }
    assert_eq!(
        external.len(),
        4,
        "React, React DOM, GraphiQL's script and stylesheet: {external:?}"
    );
    // Nothing else in the page loads from elsewhere.
    assert_eq!(
        page.matches("https://").count(),
        external.len(),
        "an external resource without a hash: {page}"
    );
}

backend_tests!(
    in_production_by_default_there_is_no_graphiql_page_and_introspection_is_refused,
    in_production_graphiql_enabled_serves_the_page_and_introspection_stays_off,
    in_production_graphql_introspection_enabled_answers_it_and_serves_no_page,
    in_production_both_switches_on_serve_the_page_and_answer_introspection,
    in_development_by_default_the_page_is_served_and_introspection_answers,
    in_development_graphiql_disabled_serves_no_page_and_introspection_still_answers,
    in_development_graphql_introspection_disabled_refuses_it_and_the_page_stays,
    the_graphiql_page_pins_every_external_script_and_stylesheet_by_an_sri_hash,
);

/// `auth-server schema` prints the committed `schema.graphql` in production with both
/// tools off (and no secrets): codegen consumers lose nothing.
#[test]
fn the_schema_command_prints_the_committed_schema_whatever_the_switches_say() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_auth-server"))
        .env_clear()
        .current_dir(dir.path())
        .env("APP_ENV", "production")
        .env("GRAPHIQL_ENABLED", "false")
        .env("GRAPHQL_INTROSPECTION", "false")
        .arg("schema")
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let committed = include_str!("../../schema.graphql");
    assert_eq!(String::from_utf8_lossy(&out.stdout), committed);
}
