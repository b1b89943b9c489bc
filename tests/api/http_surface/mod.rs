//! The HTTP surface: health, security headers, request ids, CORS, GraphiQL, GET and POST
//! rules of GraphQL over HTTP, and the request limits, one file per topic. This module
//! holds the plain-HTTP client they share.

mod cors;
mod get;
mod graphiql;
mod headers;
mod media_types;
mod post;
mod query_limits;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::TestApp;

/// A plain HTTP response.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ASCII header"))
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:.300}", self.text))
    }
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, Vec<u8>)>,
) -> Reply {
    let mut req = app.client.request(method, app.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some((content_type, bytes)) = body {
        req = req.header("content-type", content_type).body(bytes);
    }
    let resp = req.send().await.expect("request sent");
    Reply {
        status: resp.status(),
        headers: resp.headers().clone(),
        text: resp.text().await.expect("body"),
    }
}

async fn get(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> Reply {
    send(app, Method::GET, path, headers, None).await
}

async fn post_raw(
    app: &TestApp,
    content_type: &str,
    body: impl Into<Vec<u8>>,
    headers: &[(&str, &str)],
) -> Reply {
    send(
        app,
        Method::POST,
        "/graphql",
        headers,
        Some((content_type, body.into())),
    )
    .await
}

/// The security headers every response carries (HSTS is checked separately).
fn assert_security_headers(r: &Reply, what: &str) {
    assert_eq!(
        r.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(r.header("x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{what}");
    assert_eq!(r.header("cache-control"), Some("no-store"), "{what}");
    let csp = r
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no CSP"));
    assert!(csp.contains("default-src 'none'"), "{what}: weak CSP {csp}");
    assert!(
        csp.contains("frame-ancestors 'none'"),
        "{what}: CSP allows framing: {csp}"
    );
}

/// `/graphql?query=...` with the query percent-encoded.
fn get_query_path(query: &str, extra: &str) -> String {
    let mut encoded = String::new();
    for b in query.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("/graphql?query={encoded}{extra}")
}
