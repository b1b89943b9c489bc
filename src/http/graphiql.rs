//! The GraphiQL playground served on a browser's GET of `/graphql`, and the CSP that lets
//! exactly it load.

use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use http::{HeaderValue, header};
use sha2::{Digest, Sha256};

/// The playground page, rendered once, and the CSP that lets exactly it load. Its CDN
/// assets carry `integrity` hashes, so a CDN that serves other bytes cannot run code in the
/// page (which holds the bearer token a person pastes into it).
pub struct GraphiqlPage {
    html: String,
    csp: HeaderValue,
}

impl GraphiqlPage {
    pub fn new() -> Self {
        let script = include_str!("graphiql.js");
        let html = include_str!("graphiql.html").replace("__BOOTSTRAP__", script);
        let csp = Self::csp(&html);
        Self {
            html,
            csp: HeaderValue::from_str(&csp).expect("the CSP is ASCII"),
        }
    }

    /// The page, with its CSP.
    pub fn response(&self) -> Response {
        let mut response = Html(self.html.clone()).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, self.csp.clone());
        response
    }

    /// A policy that admits exactly what the page loads: its pinned scripts and stylesheet
    /// by full URL, its inline script and style by hash, the data: fonts and images of
    /// GraphiQL's stylesheet, and requests to this origin only.
    fn csp(html: &str) -> String {
        let hash = |text: &str| {
            let digest = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text));
            format!("'sha256-{digest}'")
        };
        let mut scripts = external_urls(html, "<script src=\"");
        scripts.extend(inline_blocks(html, "<script>", "</script>").map(hash));
        let mut styles = external_urls(html, "<link rel=\"stylesheet\" href=\"");
        styles.extend(inline_blocks(html, "<style>", "</style>").map(hash));
        format!(
            "default-src 'none'; script-src {}; style-src {}; img-src data:; font-src data:; \
             connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
            scripts.join(" "),
            styles.join(" "),
        )
    }
}

/// The URLs that follow each `prefix` (up to the closing quote).
fn external_urls(html: &str, prefix: &str) -> Vec<String> {
    html.split(prefix)
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

/// The contents of each `open` … `close` block.
fn inline_blocks<'a>(
    html: &'a str,
    open: &'a str,
    close: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    html.split(open)
        .skip(1)
        .filter_map(move |rest| rest.split_once(close).map(|(body, _)| body))
}

impl Default for GraphiqlPage {
    fn default() -> Self {
        Self::new()
    }
}
