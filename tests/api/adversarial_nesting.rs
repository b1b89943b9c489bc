//! Deep nesting, from the attacker's side: every place where a value or a selection can nest
//! (a field's argument list, an object value, `login`'s input, `__type(name:)`, a directive
//! argument, a variable's type and default value, selection sets, inline fragments, fragment
//! chains, the variables and extensions JSON), swept over depths from 100 to 20,000 over
//! POST (single and batched) and GET.
//!
//! The server runs inside this test binary on tokio workers with the default 2 MiB stack:
//! a request that overflows one aborts the whole binary, as it aborted the server. Each
//! request must get a clean refusal that says why, and `/health` must answer after each.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::*;

/// The documented bound (README, "GraphQL limits"): brackets nest at most this deep.
const LIMIT: usize = 64;

/// Depths around and far past the bound, through the range that used to crash (about
/// 1,600 to 7,800 levels in a release build, fewer in a debug build).
const DEPTHS: &[usize] = &[
    LIMIT + 1,
    100,
    500,
    1000,
    1500,
    2000,
    3000,
    4000,
    5000,
    6000,
    7000,
    8000,
    10_000,
    20_000,
];

/// What a document refused for its nesting says.
const DOCUMENT_TOO_DEEP: &str =
    "Query is nested too deeply: brackets `{`, `[` and `(` may nest at most 64 levels";
/// What a JSON text refused for its nesting says (after what it names).
const JSON_TOO_DEEP: &str =
    "is nested too deeply: JSON arrays and objects may nest at most 64 levels";

/// `open` `depth` times, `inner`, `close` `depth` times.
fn nest(open: &str, depth: usize, inner: &str, close: &str) -> String {
    format!("{}{inner}{}", open.repeat(depth), close.repeat(depth))
}

/// A place in a document where brackets nest, and a document nesting `depth` brackets
/// there in total (counting the braces and parentheses around it).
struct Place {
    name: &'static str,
    document: fn(usize) -> String,
}

const PLACES: &[Place] = &[
    Place {
        name: "a field's argument list",
        document: |n| format!("{{a(b:{})}}", nest("[", n - 2, "1", "]")),
    },
    Place {
        name: "an object value of `me`",
        document: |n| format!("{{me(x:{}){{id}}}}", nest("{a:", n - 2, "1", "}")),
    },
    Place {
        name: "login's input",
        document: |n| {
            format!(
                "mutation{{login(input:{{email:\"a@example.com\",password:\"{PASSWORD}\",\
                 username:{}}}){{accessToken}}}}",
                nest("[", n - 3, "\"x\"", "]")
            )
        },
    },
    Place {
        name: "__type(name:)",
        document: |n| {
            format!(
                "{{__type(name:{}){{name}}}}",
                nest("[", n - 2, "\"Query\"", "]")
            )
        },
    },
    Place {
        name: "a directive argument",
        document: |n| {
            format!(
                "{{__typename@include(if:{})}}",
                nest("[", n - 2, "true", "]")
            )
        },
    },
    Place {
        name: "a variable's type",
        document: |n| format!("query($v:{}){{__typename}}", nest("[", n - 1, "Int", "]")),
    },
    Place {
        name: "a variable's default value",
        document: |n| {
            format!(
                "query($v:[Int]={}){{__typename}}",
                nest("[", n - 1, "1", "]")
            )
        },
    },
    Place {
        name: "selection sets",
        document: |n| nest("{a", n, "", "}"),
    },
    Place {
        name: "inline fragments",
        document: |n| format!("{{{}}}", nest("...on Query{", n - 1, "__typename", "}")),
    },
];

/// Asserts the refusal of a document for its nesting, as a request error: HTTP 200 (the
/// client asked for `application/json`), no `data`, one error without a `path`.
fn assert_document_refused(r: &Gql, what: &str) {
    assert_eq!(r.status, StatusCode::OK, "{what}: {:.300}", r.body);
    assert_document_error(&r.body, what);
}

/// Asserts a response object (one of a batch, or a whole response) refused for nesting.
fn assert_document_error(body: &Value, what: &str) {
    assert!(body["data"].is_null(), "{what}: it executed: {body:.300}");
    let errors = body["errors"].as_array();
    let errors = errors.unwrap_or_else(|| panic!("{what}: no errors in {body:.300}"));
    assert_eq!(errors.len(), 1, "{what}: {body:.300}");
    assert_eq!(
        errors[0]["message"], DOCUMENT_TOO_DEEP,
        "{what}: {body:.300}"
    );
    assert!(errors[0].get("path").is_none(), "{what}: {body:.300}");
    assert!(
        errors[0]["locations"][0]["line"].is_u64(),
        "{what}: the error points at the bracket: {body:.300}"
    );
}

/// Asserts the 400 of a JSON text nested too deeply; `name` is what the message names.
fn assert_json_refused(r: &Gql, name: &str, what: &str) {
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {:.300}", r.body);
    assert_eq!(
        r.body,
        json!({"errors": [{"message": format!("{name} {JSON_TOO_DEEP}")}]}),
        "{what}"
    );
}

impl TestApp {
    /// GET /graphql with these query-string parameters.
    async fn get_params(&self, params: &[(&str, &str)]) -> Gql {
        self.send(self.client.get(self.url("/graphql")).query(params))
            .await
    }

    /// The URL of GET /graphql with these parameters, if the HTTP stack can hold it:
    /// `http::Uri` (reqwest's and hyper's) holds at most 64 KiB.
    fn get_url(&self, params: &[(&str, &str)]) -> Option<reqwest::Url> {
        let mut url = reqwest::Url::parse(&self.url("/graphql")).ok()?;
        url.query_pairs_mut().extend_pairs(params);
        (url.as_str().len() < usize::from(u16::MAX)).then_some(url)
    }

    /// Sends a GET whose URI is too long for the client's HTTP stack over a bare socket,
    /// and asserts that the server answers 414.
    async fn assert_uri_too_long(&self, params: &[(&str, &str)], what: &str) {
        let mut url = reqwest::Url::parse(&self.url("/graphql")).expect("base URL");
        url.query_pairs_mut().extend_pairs(params);
        let request = format!(
            "GET {}?{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            url.path(),
            url.query().unwrap_or_default()
        );
        let port = self.port;
        let answer = tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut socket = std::net::TcpStream::connect(("127.0.0.1", port))?;
            socket.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
            // The server may answer and close before it has read the whole line.
            let _ = socket.write_all(request.as_bytes());
            let mut answer = Vec::new();
            let _ = socket.read_to_end(&mut answer);
            std::io::Result::Ok(String::from_utf8_lossy(&answer).into_owned())
        })
        .await
        .expect("the socket task ends")
        .expect("connect");
        assert!(
            answer.starts_with("HTTP/1.1 414"),
            "{what}: {:.200}",
            answer
        );
    }

    /// Asserts `/health` still answers 200 after `what`.
    async fn assert_health_after(&self, what: &str) {
        let health = self.client.get(self.url("/health")).send().await;
        let status = health.map(|r| r.status());
        assert!(
            matches!(status, Ok(StatusCode::OK)),
            "/health after {what}: {status:?}"
        );
    }
}

async fn nesting_anywhere_in_a_document_is_refused_at_every_depth_over_post_batch_and_get(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let max_body = app.settings.http.max_body_bytes;
    for place in PLACES {
        for &depth in DEPTHS {
            let document = (place.document)(depth);
            let what = format!("{} nested {depth} deep", place.name);

            let body = json!({ "query": document });
            let r = app.post_json(body.clone(), None, &[]).await;
            if body.to_string().len() > max_body {
                assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{what}");
            } else {
                assert_document_refused(&r, &format!("POST: {what}"));
            }
            app.assert_health_after(&format!("POST: {what}")).await;

            // A batch answers each operation: the deep one refused, its neighbour run.
            let batch = json!([{ "query": document }, { "query": "{ __typename }" }]);
            if batch.to_string().len() <= max_body {
                let r = app.post_json(batch, None, &[]).await;
                assert_eq!(r.status, StatusCode::OK, "batch: {what}: {:.300}", r.body);
                assert_document_error(&r.body[0], &format!("batch: {what}"));
                assert_eq!(r.body[1], json!({"data": {"__typename": "Query"}}));
                app.assert_health_after(&format!("batch: {what}")).await;
            }

            // GET has no body limit: the whole text is in the URL (a mutation too: it is
            // refused for its nesting before anything reads its operation type), up to
            // the longest URI the HTTP stack holds.
            let what = format!("GET: {what}");
            match app.get_url(&[("query", &document)]) {
                Some(_) => assert_document_refused(&app.get_graphql(&document, None).await, &what),
                None => {
                    app.assert_uri_too_long(&[("query", &document)], &what)
                        .await
                }
            }
            app.assert_health_after(&what).await;
        }
    }
}

async fn nested_variables_and_extensions_json_is_refused_at_every_depth_over_post_and_get(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let max_body = app.settings.http.max_body_bytes;
    let query = "query($v: String) { __type(name: $v) { name } }";
    for &depth in DEPTHS {
        // The body's own object and the `variables` / `extensions` object count.
        let value = nest("[", depth - 2, "1", "]");
        for field in ["variables", "extensions"] {
            let what = format!("{field} nested {depth} deep");
            let body = format!("{{\"query\": \"{query}\", \"{field}\": {{\"v\": {value}}}}}");
            let r = app.post_bytes("application/json", body.clone()).await;
            if body.len() > max_body {
                assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{what}");
            } else {
                assert_json_refused(&r, "the request body", &format!("POST: {what}"));
            }
            app.assert_health_after(&format!("POST: {what}")).await;

            let batch = format!("[{body}]");
            if batch.len() <= max_body {
                let r = app.post_bytes("application/json", batch).await;
                assert_json_refused(&r, "the request body", &format!("batch: {what}"));
                app.assert_health_after(&format!("batch: {what}")).await;
            }

            // The parameter's own object counts.
            let param = format!("{{\"v\": {}}}", nest("[", depth - 1, "1", "]"));
            let params = [("query", query), (field, param.as_str())];
            let what = format!("GET: {what}");
            match app.get_url(&params) {
                Some(_) => {
                    let r = app.get_params(&params).await;
                    assert_json_refused(&r, &format!("`{field}`"), &what);
                }
                None => app.assert_uri_too_long(&params, &what).await,
            }
            app.assert_health_after(&what).await;
        }
    }
}

async fn nesting_at_the_bound_runs_through_parse_and_validation_and_one_more_is_refused(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    for place in PLACES {
        // At the bound the document is parsed and validated as any other: each of these
        // is refused by validation, with the standard message, or runs.
        let document = (place.document)(LIMIT);
        for r in [
            app.gql(&document, json!({}), None).await,
            app.get_graphql(&document, None).await,
        ] {
            assert!(
                r.status == StatusCode::OK || r.status == StatusCode::METHOD_NOT_ALLOWED,
                "{} at the bound: {:.300}",
                place.name,
                r.body
            );
            let message = r.body["errors"][0]["message"].as_str().unwrap_or_default();
            assert!(
                !message.contains("nested too deeply"),
                "{} at the bound: {message}",
                place.name
            );
        }
        let r = app.gql(&(place.document)(LIMIT + 1), json!({}), None).await;
        assert_document_refused(&r, &format!("{} one past the bound", place.name));
    }

    // Variables: at the bound they are coerced (and refused as the wrong type); one more
    // level is a bad request.
    let query = "query($v: String) { __type(name: $v) { name } }";
    for (depth, refused) in [(LIMIT, false), (LIMIT + 1, true)] {
        let body = format!(
            "{{\"query\": \"{query}\", \"variables\": {{\"v\": {}}}}}",
            nest("[", depth - 2, "1", "]")
        );
        let r = app.post_bytes("application/json", body).await;
        if refused {
            assert_json_refused(&r, "the request body", "variables one past the bound");
        } else {
            assert_eq!(r.status, StatusCode::OK, "{:.300}", r.body);
            assert!(r.body["data"].is_null(), "{:.300}", r.body);
            let message = r.body["errors"][0]["message"].as_str().unwrap_or_default();
            assert!(
                !message.is_empty() && !message.contains("nested too deeply"),
                "{message}"
            );
        }
    }

    // GraphiQL's own operations pass: the deepest introspection fragment nests about a
    // dozen levels.
    let r = app
        .gql(
            "{ __type(name: \"User\") { ofType { ofType { ofType { ofType { ofType { ofType \
             { ofType { name } } } } } } } } }",
            json!({}),
            None,
        )
        .await;
    r.expect_success();
    app.assert_still_healthy().await;
}

/// `{ __typename }` and `links` fragments that no operation spreads, each spreading the
/// next: validation walks such a chain recursively, one frame per link.
fn unused_fragment_chain(links: usize) -> String {
    let mut doc = String::from("{__typename}");
    for i in 0..links {
        doc.push_str(&format!("fragment F{i} on Query{{...F{}}}", i + 1));
    }
    doc.push_str(&format!("fragment F{links} on Query{{__typename}}"));
    doc
}

async fn fragment_chains_are_refused_before_validation_walks_them_at_any_length(backend: Backend) {
    // Bodies far larger than the default 64 KiB, as an operator may allow; GET's URL has
    // no body limit at all.
    let app = spawn_app_with(backend, |s| s.http.max_body_bytes = 2 * 1024 * 1024).await;
    for links in [LIMIT + 1, 1000, 10_000] {
        let document = unused_fragment_chain(links);
        let what = format!("an unused chain of {links} fragments");
        let r = app.gql(&document, json!({}), None).await;
        assert_eq!(r.status, StatusCode::OK, "{what}");
        assert!(r.body["data"].is_null(), "{what}: {:.300}", r.body);
        let message = r.body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("Query is too large"),
            "{what}: {message}"
        );
        app.assert_health_after(&what).await;
    }
    // A short chain is only the unused fragment that validation reports.
    let r = app.gql(&unused_fragment_chain(3), json!({}), None).await;
    let message = r.body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("is never used"), "{message}");
    // A cycle is refused with validation's own message, used or not.
    for document in [
        "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }",
        "{ __typename } fragment A on Query { ...A }",
    ] {
        let r = app.gql(document, json!({}), None).await;
        let message = r.body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with("Cannot spread fragment"), "{message}");
    }
    app.assert_still_healthy().await;
}

backend_tests!(
    nesting_anywhere_in_a_document_is_refused_at_every_depth_over_post_batch_and_get,
    nested_variables_and_extensions_json_is_refused_at_every_depth_over_post_and_get,
    nesting_at_the_bound_runs_through_parse_and_validation_and_one_more_is_refused,
    fragment_chains_are_refused_before_validation_walks_them_at_any_length,
);
