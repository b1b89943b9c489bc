//! The response media type: negotiated from `Accept`, 406 when none fits, and request
//! errors as 400 under `application/graphql-response+json`.

use reqwest::StatusCode;
use serde_json::json;

use super::{get, post_raw};
use crate::backend_tests;
use crate::helpers::{Backend, spawn_app};

async fn the_graphql_response_media_type_is_honoured(backend: Backend) {
    let app = spawn_app(backend).await;
    let accept = [("accept", "application/graphql-response+json")];
    let ok = app
        .post_json(json!({"query": "{ __typename }"}), None, &accept)
        .await;
    assert_eq!(ok.status, 200);
    assert_eq!(
        ok.headers["content-type"],
        "application/graphql-response+json"
    );
    assert_eq!(ok.body, json!({"data": {"__typename": "Query"}}));

    // A document that does not parse is a request error: 400 under the new media type…
    let bad = app
        .post_json(json!({"query": "{ __typename "}), None, &accept)
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert_eq!(
        bad.headers["content-type"],
        "application/graphql-response+json"
    );
    assert!(bad.body["errors"][0]["message"].is_string());
    // Nothing executed, so no `data` entry at all (not even null).
    assert!(bad.body.get("data").is_none(), "{}", bad.body);
    // …and 200 under application/json, as legacy clients expect.
    let legacy = app
        .post_json(
            json!({"query": "{ __typename "}),
            None,
            &[("accept", "application/json")],
        )
        .await;
    assert_eq!(legacy.status, 200, "{}", legacy.body);
    assert!(
        legacy.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert!(legacy.body["errors"][0]["message"].is_string());
    assert!(legacy.body.get("data").is_none(), "{}", legacy.body);

    // A resolver error is not a request error: 200 either way.
    let guarded = app
        .post_json(json!({"query": "{ me { id } }"}), None, &accept)
        .await;
    assert_eq!(guarded.status, 200);
    assert_eq!(guarded.code(), Some("UNAUTHENTICATED"));
}

async fn the_response_media_type_is_negotiated_from_accept_and_406_when_none_fits(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let graphql_json = "application/graphql-response+json";
    for (accept, expected) in [
        // No preference or a wildcard: application/json, as legacy clients (curl) expect.
        ("", "application/json"),
        ("*/*", "application/json"),
        ("application/*", "application/json"),
        ("application/json", "application/json"),
        (graphql_json, graphql_json),
        // What graphql-request and Apollo Client send.
        (
            "application/graphql-response+json, application/json",
            graphql_json,
        ),
        (
            "application/graphql-response+json,application/json;q=0.9",
            graphql_json,
        ),
        // q-values are honoured, and q=0 means "not this one".
        (
            "application/json, application/graphql-response+json;q=0.5",
            "application/json",
        ),
        (
            "application/graphql-response+json;q=0, */*",
            "application/json",
        ),
        ("text/html, */*;q=0.1", "application/json"),
    ] {
        let headers: &[(&str, &str)] = if accept.is_empty() {
            &[]
        } else {
            &[("accept", accept)]
        };
        let mut req = app
            .client
            .post(app.url("/graphql"))
            .header("content-type", "application/json")
            .body(r#"{"query":"{ __typename }"}"#);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.expect("sent");
        assert_eq!(r.status(), 200, "Accept: {accept}");
        assert_eq!(
            r.headers()["content-type"].to_str().unwrap(),
            expected,
            "Accept: {accept}"
        );
    }
    // A client that accepts neither media type gets 406, over POST and GET, and nothing
    // runs; the GraphiQL page (GET without a query) is unaffected.
    for accept in [
        "text/html",
        "application/xml, text/plain;q=0.5",
        "application/json;q=0",
    ] {
        let r = post_raw(
            &app,
            "application/json",
            r#"{"query":"{ __typename }"}"#,
            &[("accept", accept)],
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::NOT_ACCEPTABLE,
            "POST, Accept: {accept}"
        );
        let r = get(
            &app,
            "/graphql?query=%7B__typename%7D",
            &[("accept", accept)],
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::NOT_ACCEPTABLE,
            "GET, Accept: {accept}"
        );
    }
    let reg = json!({"query": "mutation { register(input: {email: \"406@example.com\", password: \"correct horse battery\"}) { accessToken } }"});
    let r = app.post_json(reg, None, &[("accept", "text/html")]).await;
    assert_eq!(r.status, StatusCode::NOT_ACCEPTABLE);
    let later = app
        .register("406@example.com", crate::helpers::PASSWORD, None)
        .await;
    later.expect_success();
    let page = get(&app, "/graphql", &[("accept", "text/html")]).await;
    assert_eq!(page.status, 200);
}

backend_tests!(
    the_graphql_response_media_type_is_honoured,
    the_response_media_type_is_negotiated_from_accept_and_406_when_none_fits,
);
