//! CORS: preflights and actual requests against the configured allow-list.

use reqwest::Method;

use super::{Reply, post_raw, send};
use crate::backend_tests;
use crate::helpers::{Backend, TestApp, spawn_app, spawn_app_with};

/// A CORS preflight for a POST with the headers a GraphQL client sends.
async fn preflight(app: &TestApp, origin: &str) -> Reply {
    send(
        app,
        Method::OPTIONS,
        "/graphql",
        &[
            ("origin", origin),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "authorization, content-type",
            ),
        ],
        None,
    )
    .await
}

async fn a_cors_preflight_from_an_allowed_origin_is_allowed_and_from_another_is_not(
    backend: Backend,
) {
    let app = spawn_app_with(backend, |s| {
        s.http.cors_allowed_origins = vec!["https://app.example.com".into()];
    })
    .await;
    let allowed = preflight(&app, "https://app.example.com").await;
    assert!(
        allowed.status.is_success(),
        "preflight refused: {}",
        allowed.status
    );
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    let methods = allowed
        .header("access-control-allow-methods")
        .unwrap_or_default()
        .to_ascii_uppercase();
    assert!(methods.contains("POST"), "methods: {methods}");
    let headers = allowed
        .header("access-control-allow-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        headers.contains("authorization") && headers.contains("content-type"),
        "headers: {headers}"
    );

    let denied = preflight(&app, "https://evil.example.com").await;
    assert_eq!(denied.header("access-control-allow-origin"), None);

    // The actual request too.
    let post = post_raw(
        &app,
        "application/json",
        r#"{"query":"{ __typename }"}"#,
        &[("origin", "https://app.example.com")],
    )
    .await;
    assert_eq!(
        post.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    let post = post_raw(
        &app,
        "application/json",
        r#"{"query":"{ __typename }"}"#,
        &[("origin", "https://evil.example.com")],
    )
    .await;
    assert_eq!(post.header("access-control-allow-origin"), None);
}

async fn no_origin_is_allowed_by_default(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = send(
        &app,
        Method::OPTIONS,
        "/graphql",
        &[
            ("origin", "https://app.example.com"),
            ("access-control-request-method", "POST"),
        ],
        None,
    )
    .await;
    assert_eq!(r.header("access-control-allow-origin"), None);
}

async fn a_wildcard_allows_every_origin_and_responses_expose_retry_after(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.http.cors_allowed_origins = vec!["*".into()]).await;
    let r = preflight(&app, "https://anywhere.example.org").await;
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let post = post_raw(
        &app,
        "application/json",
        r#"{"query":"{ __typename }"}"#,
        &[("origin", "https://anywhere.example.org")],
    )
    .await;
    assert_eq!(post.header("access-control-allow-origin"), Some("*"));
    // Browsers only let scripts read the headers a response exposes.
    let exposed = post
        .header("access-control-expose-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(exposed.contains("retry-after"), "exposed: {exposed}");
    assert!(exposed.contains("x-request-id"), "exposed: {exposed}");
}

async fn a_configured_origin_with_a_trailing_slash_still_matches(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.http.cors_allowed_origins = vec![
            "https://app.example.com/".into(),
            "http://localhost:3000".into(),
        ];
    })
    .await;
    for origin in ["https://app.example.com", "http://localhost:3000"] {
        let r = preflight(&app, origin).await;
        assert_eq!(r.header("access-control-allow-origin"), Some(origin));
    }
    let r = preflight(&app, "http://localhost:3001").await;
    assert_eq!(r.header("access-control-allow-origin"), None);
}

backend_tests!(
    a_cors_preflight_from_an_allowed_origin_is_allowed_and_from_another_is_not,
    no_origin_is_allowed_by_default,
    a_wildcard_allows_every_origin_and_responses_expose_retry_after,
    a_configured_origin_with_a_trailing_slash_still_matches,
);
