//! The GraphiQL page on a browser's GET of `/graphql`: pinned assets, its CSP, and
//! turning it off.

use base64::Engine;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::get;
use crate::backend_tests;
use crate::helpers::{Backend, spawn_app, spawn_app_with};

async fn a_browser_get_on_graphql_serves_the_graphiql_page_with_a_csp_that_lets_it_load(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let r = get(
        &app,
        "/graphql",
        &[("accept", "text/html,application/xhtml+xml")],
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/html")),
        "{:?}",
        r.header("content-type")
    );
    assert!(r.text.to_lowercase().contains("graphiql"));
    assert!(
        r.text.contains("graphiql@3.8.3"),
        "GraphiQL version is not pinned"
    );
    assert!(
        r.text.contains("react@18.3.1"),
        "React version is not pinned"
    );
    assert!(
        r.text.contains("react-dom@18.3.1"),
        "React DOM version is not pinned"
    );

    let csp = r
        .header("content-security-policy")
        .expect("CSP on the GraphiQL page");
    let script_src = csp
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("script-src"))
        .unwrap_or_else(|| panic!("no script-src in {csp}"));
    assert!(script_src.contains("https://unpkg.com"), "{script_src}");
    assert!(!script_src.contains("'unsafe-eval'"), "{script_src}");
    // Exactly what the page loads: each pinned asset by its full URL, no whole CDN host.
    for url in r.text.split('"').filter(|s| s.starts_with("https://")) {
        assert!(csp.contains(url), "{url} is not in the CSP {csp}");
    }
    assert!(
        !csp.split([' ', ';'])
            .any(|source| source == "https://unpkg.com"),
        "the CSP admits the whole CDN: {csp}"
    );
    assert!(!csp.contains("'unsafe-inline'"), "{csp}");
    // Every inline script is allowed by its hash (or the policy could not let it run).
    let mut rest = r.text.as_str();
    let mut inline = 0;
    while let Some(start) = rest.find("<script>") {
        let body = &rest[start + "<script>".len()..];
        let end = body.find("</script>").expect("closed script");
        let digest = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&body[..end]));
        assert!(
            script_src.contains(&format!("'sha256-{digest}'")),
            "inline script not allowed by {script_src}"
        );
        inline += 1;
        rest = &body[end..];
    }
    assert!(
        inline >= 1 || script_src.contains("'unsafe-inline'"),
        "no bootstrap script found"
    );
    let style_src = csp
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("style-src"))
        .unwrap_or_default();
    assert!(
        style_src.contains("https://unpkg.com"),
        "GraphiQL's stylesheet is blocked: {csp}"
    );
    let connect_src = csp
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("connect-src"))
        .unwrap_or_default();
    assert!(
        connect_src.contains("'self'"),
        "GraphiQL cannot reach the API: {csp}"
    );
    // The other security headers still apply.
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
}

async fn graphiql_can_be_turned_off(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.graphql.graphiql = false).await;
    let r = get(&app, "/graphql", &[("accept", "text/html")]).await;
    assert!(r.status.is_client_error(), "status {}", r.status);
    assert!(
        !r.header("content-type")
            .unwrap_or_default()
            .starts_with("text/html")
    );
    assert!(
        !r.text.to_lowercase().contains("graphiql"),
        "{:.200}",
        r.text
    );
    // Queries over GET still work.
    let q = get(&app, "/graphql?query=%7B__typename%7D", &[]).await;
    assert_eq!(q.status, 200);
    assert_eq!(q.json(), json!({"data": {"__typename": "Query"}}));
}

backend_tests!(
    a_browser_get_on_graphql_serves_the_graphiql_page_with_a_csp_that_lets_it_load,
    graphiql_can_be_turned_off,
);
