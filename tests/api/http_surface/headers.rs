//! Health, the security headers and request ids every response carries, and routing.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{assert_security_headers, get, post_raw, send};
use crate::backend_tests;
use crate::helpers::{Backend, spawn_app, spawn_app_with};

async fn health_reports_the_service_and_the_database_up(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = get(&app, "/health", &[]).await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
    );
    assert_eq!(r.json(), json!({"status": "ok", "database": "up"}));
}

async fn every_response_carries_the_security_headers(backend: Backend) {
    let app = spawn_app(backend).await;
    let health = get(&app, "/health", &[]).await;
    assert_security_headers(&health, "GET /health");
    let post = post_raw(
        &app,
        "application/json",
        r#"{"query":"{ __typename }"}"#,
        &[],
    )
    .await;
    assert_eq!(post.status, 200);
    assert_security_headers(&post, "POST /graphql");
    let missing = get(&app, "/nowhere", &[]).await;
    assert_security_headers(&missing, "a 404");
    let bad = post_raw(&app, "application/json", "{not json", &[]).await;
    assert_security_headers(&bad, "a 400");
    let huge = post_raw(&app, "application/json", vec![b' '; 65 * 1024], &[]).await;
    assert_eq!(huge.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_security_headers(&huge, "a 413");
    // No HSTS unless configured: the server may run behind plain HTTP on a laptop.
    for r in [&health, &post, &missing, &bad, &huge] {
        assert_eq!(r.header("strict-transport-security"), None);
    }
}

async fn hsts_is_sent_when_configured(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.http.hsts_max_age = Some(Duration::from_secs(31_536_000))
    })
    .await;
    for path in ["/health", "/graphql?query=%7B__typename%7D", "/nowhere"] {
        let r = get(&app, path, &[]).await;
        let hsts = r
            .header("strict-transport-security")
            .unwrap_or_else(|| panic!("no HSTS on {path}"));
        assert!(hsts.starts_with("max-age=31536000"), "{path}: {hsts}");
    }
}

async fn every_response_carries_a_request_id_and_an_incoming_one_is_echoed(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = get(&app, "/health", &[]).await;
    let b = post_raw(
        &app,
        "application/json",
        r#"{"query":"{ __typename }"}"#,
        &[],
    )
    .await;
    let c = get(&app, "/nowhere", &[]).await;
    let ids: Vec<&str> = [&a, &b, &c]
        .iter()
        .map(|r| r.header("x-request-id").expect("x-request-id"))
        .collect();
    assert!(ids.iter().all(|id| !id.is_empty()));
    assert_ne!(ids[0], ids[1], "request ids must differ");
    assert_ne!(ids[1], ids[2], "request ids must differ");

    let echoed = get(&app, "/health", &[("x-request-id", "trace-me-42")]).await;
    assert_eq!(echoed.header("x-request-id"), Some("trace-me-42"));
    let echoed = post_raw(
        &app,
        "application/json",
        r#"{"query":"{ __typename }"}"#,
        &[("x-request-id", "abc-123")],
    )
    .await;
    assert_eq!(echoed.header("x-request-id"), Some("abc-123"));
}

async fn an_unknown_path_is_404(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(
        get(&app, "/nowhere", &[]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&app, "/graphql/extra", &[]).await.status,
        StatusCode::NOT_FOUND
    );
    let r = send(
        &app,
        Method::POST,
        "/health",
        &[],
        Some(("application/json", b"{}".to_vec())),
    )
    .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

backend_tests!(
    health_reports_the_service_and_the_database_up,
    every_response_carries_the_security_headers,
    hsts_is_sent_when_configured,
    every_response_carries_a_request_id_and_an_incoming_one_is_echoed,
    an_unknown_path_is_404,
);
