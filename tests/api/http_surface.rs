//! The HTTP surface: health, security headers, request ids, CORS, GraphiQL, GET and POST
//! rules of GraphQL over HTTP, and the request limits.

use std::time::Duration;

use base64::Engine;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, spawn_app, spawn_app_with};

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

const TYPE_REF: &str = "
fragment TypeRef on __Type {
  kind
  name
  ofType {
    kind
    name
    ofType {
      kind
      name
      ofType {
        kind
        name
        ofType {
          kind
          name
          ofType {
            kind
            name
            ofType {
              kind
              name
              ofType {
                kind
                name
              }
            }
          }
        }
      }
    }
  }
}";

/// What graphql-js `getIntrospectionQuery()` returns with its default options, which is
/// what GraphiQL sends.
fn standard_introspection_query() -> String {
    format!(
        "
query IntrospectionQuery {{
  __schema {{
    queryType {{ name }}
    mutationType {{ name }}
    subscriptionType {{ name }}
    types {{
      ...FullType
    }}
    directives {{
      name
      description
      locations
      args {{
        ...InputValue
      }}
    }}
  }}
}}

fragment FullType on __Type {{
  kind
  name
  description
  fields(includeDeprecated: true) {{
    name
    description
    args {{
      ...InputValue
    }}
    type {{
      ...TypeRef
    }}
    isDeprecated
    deprecationReason
  }}
  inputFields {{
    ...InputValue
  }}
  interfaces {{
    ...TypeRef
  }}
  enumValues(includeDeprecated: true) {{
    name
    description
    isDeprecated
    deprecationReason
  }}
  possibleTypes {{
    ...TypeRef
  }}
}}

fragment InputValue on __InputValue {{
  name
  description
  type {{ ...TypeRef }}
  defaultValue
}}
{TYPE_REF}"
    )
}

/// `getIntrospectionQuery` with every option on (descriptions, schemaDescription,
/// specifiedByUrl, directiveIsRepeatable, inputValueDeprecation, oneOf), as schema-driven
/// code generators may send it.
fn full_options_introspection_query() -> String {
    format!(
        "
query IntrospectionQuery {{
  __schema {{
    description
    queryType {{ name }}
    mutationType {{ name }}
    subscriptionType {{ name }}
    types {{
      ...FullType
    }}
    directives {{
      name
      description
      isRepeatable
      locations
      args(includeDeprecated: true) {{
        ...InputValue
      }}
    }}
  }}
}}

fragment FullType on __Type {{
  kind
  name
  description
  specifiedByURL
  isOneOf
  fields(includeDeprecated: true) {{
    name
    description
    args(includeDeprecated: true) {{
      ...InputValue
    }}
    type {{
      ...TypeRef
    }}
    isDeprecated
    deprecationReason
  }}
  inputFields(includeDeprecated: true) {{
    ...InputValue
  }}
  interfaces {{
    ...TypeRef
  }}
  enumValues(includeDeprecated: true) {{
    name
    description
    isDeprecated
    deprecationReason
  }}
  possibleTypes {{
    ...TypeRef
  }}
}}

fragment InputValue on __InputValue {{
  name
  description
  type {{ ...TypeRef }}
  defaultValue
  isDeprecated
  deprecationReason
}}
{TYPE_REF}"
    )
}

/// Asserts an introspection result with no errors that names the root types.
fn assert_introspection_ok(r: &crate::helpers::Gql) {
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body["errors"].is_null(),
        "introspection failed: {}",
        r.body["errors"]
    );
    let schema = &r.body["data"]["__schema"];
    assert_eq!(schema["queryType"]["name"], "Query");
    assert_eq!(schema["mutationType"]["name"], "Mutation");
    assert!(schema["subscriptionType"].is_null());
    let types = schema["types"].as_array().expect("types");
    for name in ["User", "AuthPayload", "RegisterInput", "LoginInput"] {
        assert!(types.iter().any(|t| t["name"] == name), "no type {name}");
    }
}

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

async fn a_query_deeper_than_the_limit_is_refused_without_a_server_error(backend: Backend) {
    let app = spawn_app(backend).await;
    // 20 levels of ofType under __schema/types: deeper than the default limit of 16.
    let mut query = String::from("name");
    for _ in 0..20 {
        query = format!("ofType {{ {query} }}");
    }
    let query = format!("{{ __schema {{ types {{ {query} }} }} }}");
    let r = app.gql(&query, json!({}), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body["data"].is_null(),
        "the deep query ran: {:.300}",
        r.body
    );
    let message = r.body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.to_lowercase().contains("deep"), "{}", r.body);
    assert_ne!(r.code(), Some("INTERNAL_SERVER_ERROR"));

    let app = spawn_app_with(backend, |s| s.graphql.max_depth = 2).await;
    let r = app
        .gql("{ __schema { types { name } } }", json!({}), None)
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body["data"].is_null(), "{}", r.body);
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase()
            .contains("deep"),
        "{}",
        r.body
    );
    let ok = app.gql("{ __typename }", json!({}), None).await;
    assert_eq!(ok.body, json!({"data": {"__typename": "Query"}}));
}

async fn a_query_more_complex_than_the_limit_is_refused_without_a_server_error(backend: Backend) {
    let app = spawn_app(backend).await;
    // 300 aliased `me { id }`: 600 fields, over the default complexity limit of 500.
    let fields: Vec<String> = (0..300).map(|i| format!("m{i}: me {{ id }}")).collect();
    let r = app
        .gql(&format!("{{ {} }}", fields.join(" ")), json!({}), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["data"].is_null(), "the complex query ran");
    let message = r.body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.to_lowercase().contains("complex"), "{}", r.body);
    // 400 under the GraphQL-over-HTTP media type: nothing was executed.
    let r = app
        .post_json(
            json!({"query": format!("{{ {} }}", fields.join(" "))}),
            None,
            &[("accept", "application/graphql-response+json")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
}

async fn graphiqls_standard_introspection_query_passes_the_default_limits(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app
        .post_json(
            json!({"query": standard_introspection_query(), "operationName": "IntrospectionQuery"}),
            None,
            &[],
        )
        .await;
    assert_introspection_ok(&r);
    // GraphiQL may also send it over GET.
    let r = get(
        &app,
        &get_query_path(&standard_introspection_query(), ""),
        &[],
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.json()["errors"].is_null(), "{:.500}", r.text);
}

async fn an_introspection_query_with_every_option_passes_the_default_limits(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app
        .post_json(
            json!({"query": full_options_introspection_query()}),
            None,
            &[],
        )
        .await;
    assert_introspection_ok(&r);
}

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
    a_cors_preflight_from_an_allowed_origin_is_allowed_and_from_another_is_not,
    no_origin_is_allowed_by_default,
    a_wildcard_allows_every_origin_and_responses_expose_retry_after,
    a_configured_origin_with_a_trailing_slash_still_matches,
    a_browser_get_on_graphql_serves_the_graphiql_page_with_a_csp_that_lets_it_load,
    graphiql_can_be_turned_off,
    a_query_over_get_is_executed,
    a_get_query_selects_its_operation_by_operation_name_and_reads_variables,
    a_mutation_over_get_is_refused_with_405_and_allow_post,
    a_body_over_64_kib_is_refused_with_413,
    a_batch_of_two_is_executed_and_one_over_the_limit_is_refused,
    a_batch_over_the_limit_executes_nothing,
    an_empty_batch_is_a_bad_request,
    malformed_json_is_a_bad_request,
    a_post_that_is_not_application_json_is_refused_with_415,
    a_query_deeper_than_the_limit_is_refused_without_a_server_error,
    a_query_more_complex_than_the_limit_is_refused_without_a_server_error,
    graphiqls_standard_introspection_query_passes_the_default_limits,
    an_introspection_query_with_every_option_passes_the_default_limits,
    the_graphql_response_media_type_is_honoured,
    a_post_without_a_query_is_a_bad_request,
    the_response_media_type_is_negotiated_from_accept_and_406_when_none_fits,
    an_unknown_path_is_404,
);
