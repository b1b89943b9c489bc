//! POST bodies: the size limit, batches, malformed JSON, the content type, a missing
//! query.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::post_raw;
use crate::backend_tests;
use crate::helpers::{Backend, spawn_app};

async fn a_body_over_64_kib_is_refused_with_413(backend: Backend) {
    let app = spawn_app(backend).await;
    let padding = "#".repeat(65 * 1024);
    let body = serde_json::to_vec(&json!({"query": format!("{{ __typename }}\n{padding}")}))
        .expect("json");
    assert!(body.len() > 64 * 1024);
    let r = post_raw(&app, "application/json", body, &[]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);

    // Just under the limit is fine.
    let padding = "#".repeat(60 * 1024);
    let body = serde_json::to_vec(&json!({"query": format!("{{ __typename }}\n{padding}")}))
        .expect("json");
    let r = post_raw(&app, "application/json", body, &[]).await;
    assert_eq!(r.status, 200, "{:.300}", r.text);
    assert_eq!(r.json(), json!({"data": {"__typename": "Query"}}));
}

async fn a_batch_of_two_is_executed_and_one_over_the_limit_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let op = json!({"query": "{ __typename }"});

    let two = app
        .post_json(json!([op, {"query": "query { me { id } }"}]), None, &[])
        .await;
    assert_eq!(two.status, 200, "{}", two.body);
    let results = two
        .body
        .as_array()
        .unwrap_or_else(|| panic!("a batch answers an array: {}", two.body));
    assert_eq!(results.len(), 2);
    assert_eq!(results[0], json!({"data": {"__typename": "Query"}}));
    assert_eq!(
        results[1]["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );

    let ten = app
        .post_json(Value::Array(vec![op.clone(); 10]), None, &[])
        .await;
    assert_eq!(ten.status, 200);
    assert_eq!(ten.body.as_array().map(Vec::len), Some(10));

    let eleven = app
        .post_json(Value::Array(vec![op.clone(); 11]), None, &[])
        .await;
    assert_eq!(eleven.status, StatusCode::BAD_REQUEST, "{}", eleven.body);
    assert!(
        eleven.body["errors"][0]["message"].is_string(),
        "{}",
        eleven.body
    );
}

async fn a_batch_over_the_limit_executes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut ops: Vec<Value> = vec![json!({"query": "{ __typename }"}); 10];
    ops.push(json!({
        "query": "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }",
        "variables": {"i": {"email": "batched@example.com", "password": crate::helpers::PASSWORD}},
    }));
    let r = app.post_json(Value::Array(ops), None, &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let later = app
        .register("batched@example.com", crate::helpers::PASSWORD, None)
        .await;
    assert!(
        later.body["errors"].is_null(),
        "the refused batch ran: {}",
        later.body
    );
}

async fn an_empty_batch_is_a_bad_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app.post_json(json!([]), None, &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
}

async fn malformed_json_is_a_bad_request(backend: Backend) {
    let app = spawn_app(backend).await;
    for body in ["{not json", "", "\"just a string\"", "{\"query\": 42}"] {
        let r = post_raw(&app, "application/json", body, &[]).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "for {body:?}: {}",
            r.text
        );
    }
}

async fn a_post_that_is_not_application_json_is_refused_with_415(backend: Backend) {
    let app = spawn_app(backend).await;
    // Raw GraphQL, and a JSON body labelled text/plain or as a form: "simple" cross-origin
    // requests that a browser sends without a CORS preflight.
    let login = json!({"query": "mutation { login(input: {email: \"a@example.com\", password: \"correct horse battery\"}) { accessToken } }"}).to_string();
    let typename = r#"{"query":"{ __typename }"}"#.to_owned();
    for (content_type, body) in [
        ("text/plain", "{ __typename }".to_owned()),
        ("text/plain", typename.clone()),
        ("text/plain;charset=UTF-8", login),
        ("application/x-www-form-urlencoded", typename.clone()),
        ("application/graphql", "{ __typename }".to_owned()),
    ] {
        let r = post_raw(&app, content_type, body, &[]).await;
        assert_eq!(
            r.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type}: {}",
            r.text
        );
    }
    // No content type at all is refused too.
    let r = app
        .client
        .post(app.url("/graphql"))
        .body(typename.clone())
        .send()
        .await
        .expect("sent");
    assert!(r.status().is_client_error(), "status {}", r.status());
    // application/json with parameters and in any case is fine.
    for content_type in ["application/json; charset=utf-8", "Application/JSON"] {
        let r = post_raw(&app, content_type, typename.clone(), &[]).await;
        assert_eq!(r.status, 200, "{content_type}: {}", r.text);
        assert_eq!(r.json(), json!({"data": {"__typename": "Query"}}));
    }
}

async fn a_post_without_a_query_is_a_bad_request(backend: Backend) {
    let app = spawn_app(backend).await;
    // GraphQL over HTTP makes `query` required: its absence is a malformed request, not
    // an empty document, whatever the client accepts.
    for body in [
        json!({"qeury": "{ __typename }"}),
        json!({"variables": {}}),
        json!({"query": null}),
        json!([{"query": "{ __typename }"}, {"operationName": "A"}]),
    ] {
        for accept in ["application/json", "application/graphql-response+json"] {
            let r = app
                .post_json(body.clone(), None, &[("accept", accept)])
                .await;
            assert_eq!(
                r.status,
                StatusCode::BAD_REQUEST,
                "{body} ({accept}): {}",
                r.body
            );
            assert!(r.body["errors"][0]["message"].is_string(), "{}", r.body);
        }
    }
}

backend_tests!(
    a_body_over_64_kib_is_refused_with_413,
    a_batch_of_two_is_executed_and_one_over_the_limit_is_refused,
    a_batch_over_the_limit_executes_nothing,
    an_empty_batch_is_a_bad_request,
    malformed_json_is_a_bad_request,
    a_post_that_is_not_application_json_is_refused_with_415,
    a_post_without_a_query_is_a_bad_request,
);
