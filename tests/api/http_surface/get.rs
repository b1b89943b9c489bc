//! Queries over GET: parameters, operation selection, and mutations refused.

use reqwest::StatusCode;
use serde_json::json;

use super::{get, get_query_path};
use crate::backend_tests;
use crate::helpers::{Backend, spawn_app};

async fn a_query_over_get_is_executed(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = get(&app, "/graphql?query=%7B__typename%7D", &[]).await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
    );
    assert_eq!(r.json(), json!({"data": {"__typename": "Query"}}));

    let r = get(
        &app,
        &get_query_path("query Named { __typename }", "&operationName=Named"),
        &[],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"data": {"__typename": "Query"}}));
}

async fn a_get_query_selects_its_operation_by_operation_name_and_reads_variables(backend: Backend) {
    let app = spawn_app(backend).await;
    // GraphQL over HTTP names the parameter `operationName`.
    let doc = "query A { a: __typename } query B { b: __typename }";
    for (name, expected) in [("A", json!({"a": "Query"})), ("B", json!({"b": "Query"}))] {
        let r = get(
            &app,
            &get_query_path(doc, &format!("&operationName={name}")),
            &[],
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json(), json!({"data": expected}), "operationName={name}");
    }
    let path = get_query_path(
        "query($n: String!) { __type(name: $n) { name } }",
        "&variables=%7B%22n%22%3A%22User%22%7D",
    );
    let r = get(&app, &path, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json(), json!({"data": {"__type": {"name": "User"}}}));
}

async fn a_mutation_over_get_is_refused_with_405_and_allow_post(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = get(&app, &get_query_path("mutation { logout }", ""), &[]).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.header("allow"), Some("POST"));

    // Also when the mutation is selected by name from a document that holds a query
    // (several times: operations must not be picked in hash order).
    for doc in [
        "query Q { __typename } mutation M { logout }",
        "mutation M { logout } query Q { __typename }",
    ] {
        for _ in 0..8 {
            let r = get(&app, &get_query_path(doc, "&operationName=M"), &[]).await;
            assert_eq!(
                r.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{doc}: {}",
                r.text
            );
            assert_eq!(r.header("allow"), Some("POST"));
        }
    }

    // A register over GET must not create an account.
    let reg = r#"mutation { register(input: {email: "get@example.com", password: "correct horse battery"}) { accessToken } }"#;
    let r = get(&app, &get_query_path(reg, ""), &[]).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    let again = app
        .register("get@example.com", crate::helpers::PASSWORD, None)
        .await;
    assert!(
        again.body["errors"].is_null(),
        "GET created the account: {}",
        again.body
    );
}

backend_tests!(
    a_query_over_get_is_executed,
    a_get_query_selects_its_operation_by_operation_name_and_reads_variables,
    a_mutation_over_get_is_refused_with_405_and_allow_post,
);
