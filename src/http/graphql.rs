//! `/graphql`: POST and GET execution, GraphiQL, batching and response shaping.

use std::net::SocketAddr;
use std::sync::Arc;

use async_graphql::parser::types::OperationType;
use async_graphql::{BatchRequest, BatchResponse, ServerError};
use async_graphql_axum::GraphQLResponse;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, Request, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use sha2::{Digest, Sha256};

use super::AppState;
use crate::graphql::RequestContext;
use crate::nesting;

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

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

/// POST: a JSON body holding one operation or a batch of at most `max_batch`.
pub async fn post_handler(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
) -> Response {
    // Taken rather than extracted: the `HeaderMap` extractor clones the map.
    let headers = std::mem::take(request.headers_mut());
    let body = Bytes::from_request(request, &()).await;
    if !is_json(&headers) {
        // Also keeps browsers' preflight-free "simple" cross-origin POSTs out.
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the request as Content-Type: application/json",
        );
    }
    let Some(media) = negotiate(&headers) else {
        return not_acceptable();
    };
    let body = match body {
        Ok(b) => b,
        Err(rejection) => {
            let status = rejection.status();
            return error_response(status, &rejection.body_text());
        }
    };
    let request = match parse_body(&body) {
        Ok(r) => r,
        Err(message) => return error_response(StatusCode::BAD_REQUEST, &message),
    };
    if let BatchRequest::Batch(ops) = &request {
        if ops.is_empty() {
            return error_response(StatusCode::BAD_REQUEST, "a batch must not be empty");
        }
        if ops.len() > state.max_batch {
            return error_response(
                StatusCode::BAD_REQUEST,
                &format!("a batch may hold at most {} operations", state.max_batch),
            );
        }
    }
    execute(&state, peer, &headers, request, media).await
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

/// An object is one operation, an array a batch; anything else is a 400, as is a body
/// nested deeper than [`nesting::LIMIT`] (refused before serde's recursive parse, whose own
/// limit is 128, and the recursive conversions and drops after it).
fn parse_body(body: &[u8]) -> Result<BatchRequest, String> {
    if nesting::check_json(body).is_err() {
        return Err(json_too_deep("the request body"));
    }
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let parsed = if first == Some(&b'[') {
        serde_json::from_slice::<Vec<PostOperation>>(body)
            .map(|ops| BatchRequest::Batch(ops.into_iter().map(Into::into).collect()))
    } else {
        serde_json::from_slice::<PostOperation>(body).map(|op| BatchRequest::Single(op.into()))
    };
    parsed.map_err(|e| format!("invalid GraphQL request body: {e}"))
}

/// One POSTed operation. GraphQL over HTTP makes `query` required, so a body without it
/// is a malformed request (400) rather than an empty document; the other parameters are
/// read as async-graphql reads them.
#[derive(serde::Deserialize)]
struct PostOperation {
    query: String,
    #[serde(flatten)]
    rest: async_graphql::Request,
}

impl From<PostOperation> for async_graphql::Request {
    fn from(op: PostOperation) -> Self {
        let mut request = op.rest;
        request.query = op.query;
        request
    }
}

/// The response media types of GraphQL over HTTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Media {
    /// `application/graphql-response+json`: request errors are 400.
    GraphqlResponseJson,
    /// `application/json`, for legacy clients: always 200 once the request is understood.
    Json,
}

/// Picks the response media type from `Accept` (q-values and wildcards honoured); `None`
/// when the client accepts neither, which is a 406. No `Accept` means `application/json`,
/// as does `*/*` (curl's default). At equal preference a client that names
/// `application/graphql-response+json` explicitly gets it.
fn negotiate(headers: &HeaderMap) -> Option<Media> {
    let mut ranges = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .peekable();
    if ranges.peek().is_none() {
        return Some(Media::Json);
    }
    // Per media type: (specificity of the best matching range, its q), q in thousandths.
    let mut graphql = (0u8, 0u16);
    let mut json = (0u8, 0u16);
    for range in ranges {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            .map_or(1000, |(_, v)| {
                v.trim()
                    .parse::<f32>()
                    .map_or(0, |q| (q.clamp(0.0, 1.0) * 1000.0) as u16)
            });
        let specificity = |name: &str| match media.as_str() {
            m if m == name => 3,
            "application/*" => 2,
            "*/*" => 1,
            _ => 0,
        };
        for (slot, name) in [
            (&mut graphql, GRAPHQL_RESPONSE_JSON),
            (&mut json, "application/json"),
        ] {
            let s = specificity(name);
            if s > slot.0 {
                *slot = (s, q);
            }
        }
    }
    match (graphql.1, json.1) {
        (0, 0) => None,
        (g, j) if g > j || (g == j && graphql.0 == 3) => Some(Media::GraphqlResponseJson),
        _ => Some(Media::Json),
    }
}

/// 406 for a client that accepts none of the GraphQL-over-HTTP media types.
fn not_acceptable() -> Response {
    error_response(
        StatusCode::NOT_ACCEPTABLE,
        "accept application/graphql-response+json or application/json",
    )
}

/// GET: GraphiQL for a browser without a query; otherwise a query (never a mutation).
pub async fn get_handler(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
    uri: http::Uri,
) -> Response {
    let query_string = uri.query().unwrap_or_default();
    let has_query = query_string
        .split('&')
        .any(|pair| pair.split('=').next() == Some("query"));
    if !has_query {
        return match &state.graphiql {
            Some(page) if method == Method::GET => {
                let mut response = axum::response::Html(page.html.clone()).into_response();
                response
                    .headers_mut()
                    .insert(header::CONTENT_SECURITY_POLICY, page.csp.clone());
                response
            }
            _ => error_response(StatusCode::BAD_REQUEST, "missing the `query` parameter"),
        };
    }
    let Some(media) = negotiate(&headers) else {
        return not_acceptable();
    };
    let request = match parse_get(query_string) {
        Ok(r) => r,
        Err(message) => return error_response(StatusCode::BAD_REQUEST, &message),
    };
    if selects_mutation(&request) {
        let mut response =
            error_response(StatusCode::METHOD_NOT_ALLOWED, "mutations must use POST");
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    execute(&state, peer, &headers, BatchRequest::Single(request), media).await
}

/// The GraphQL-over-HTTP GET parameters: `query`, `operationName`, `variables` (JSON).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetParams {
    query: String,
    operation_name: Option<String>,
    variables: Option<String>,
    extensions: Option<String>,
}

fn parse_get(query_string: &str) -> Result<async_graphql::Request, String> {
    let params: GetParams = axum::extract::Query::try_from_uri(
        &format!("/?{query_string}")
            .parse()
            .map_err(|_| "invalid query string".to_owned())?,
    )
    .map(|q| q.0)
    .map_err(|e| format!("invalid query string: {}", e.body_text()))?;
    let json = |name: &str, raw: Option<String>| -> Result<serde_json::Value, String> {
        match raw.filter(|r| !r.is_empty()) {
            None => Ok(serde_json::Value::Null),
            Some(r) if nesting::check_json(r.as_bytes()).is_err() => {
                Err(json_too_deep(&format!("`{name}`")))
            }
            Some(r) => serde_json::from_str(&r).map_err(|e| format!("`{name}` is not JSON: {e}")),
        }
    };
    let mut request = async_graphql::Request::new(params.query).variables(
        async_graphql::Variables::from_json(json("variables", params.variables)?),
    );
    if let Some(name) = params.operation_name.filter(|n| !n.is_empty()) {
        request = request.operation_name(name);
    }
    if let serde_json::Value::Object(map) = json("extensions", params.extensions)? {
        for (key, value) in map {
            if let Ok(value) = async_graphql::Value::from_json(value) {
                request.extensions.insert(key, value);
            }
        }
    }
    Ok(request)
}

/// The 400 message for JSON nested deeper than [`nesting::LIMIT`].
fn json_too_deep(what: &str) -> String {
    format!(
        "{what} is nested too deeply: JSON arrays and objects may nest at most {} levels",
        nesting::LIMIT
    )
}

async fn execute(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    request: BatchRequest,
    media: Media,
) -> Response {
    let client_ip = state.client_ip.resolve(peer, headers);
    let bearer = bearer(headers);
    // One context per operation: a batched `logout` must not leave a cached caller
    // for the operations after it.
    let context = || RequestContext::new(client_ip, bearer.clone());
    let request = match request {
        BatchRequest::Single(r) => BatchRequest::Single(r.data(context())),
        BatchRequest::Batch(rs) => {
            BatchRequest::Batch(rs.into_iter().map(|r| r.data(context())).collect())
        }
    };
    let response = state.executor.execute_batch(request).await;
    shape(response, media)
}

/// `Authorization: Bearer <token>`; any other present value is kept so it fails as invalid.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?;
    let text = value.to_str().unwrap_or_default().trim();
    let token = match text.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => "",
    };
    Some(token.to_owned())
}

/// Whether the operation a GET would run is a mutation (or subscription).
fn selects_mutation(request: &async_graphql::Request) -> bool {
    // Execution reports a text nested too deeply (it must not reach the recursive parser
    // here either) and a syntax error; nothing runs for either.
    if nesting::check_graphql(&request.query).is_err() {
        return false;
    }
    let Ok(doc) = async_graphql::parser::parse_query(&request.query) else {
        return false;
    };
    let selected = match &request.operation_name {
        Some(name) => doc
            .operations
            .iter()
            .find(|(n, _)| n.map(|n| n.as_str()) == Some(name.as_str()))
            .map(|(_, op)| op.node.ty),
        // With several operations and no name, execution refuses to choose; nothing runs.
        None if doc.operations.iter().count() == 1 => {
            doc.operations.iter().next().map(|(_, op)| op.node.ty)
        }
        None => None,
    };
    matches!(
        selected,
        Some(OperationType::Mutation | OperationType::Subscription)
    )
}

/// JSON body, the media type the client asked for, and `Retry-After` when rate-limited.
fn shape(response: BatchResponse, media: Media) -> Response {
    let errors: Vec<&ServerError> = match &response {
        BatchResponse::Single(r) => r.errors.iter().collect(),
        BatchResponse::Batch(rs) => rs.iter().flat_map(|r| r.errors.iter()).collect(),
    };
    let retry_after = errors
        .iter()
        .filter_map(|e| e.extensions.as_ref()?.get("retryAfter"))
        .filter_map(|v| match v {
            async_graphql::Value::Number(n) => n.as_u64(),
            _ => None,
        })
        .max();
    // A request error (a document that does not parse or validate, variables that do not
    // coerce: nothing executed) has no `data` entry (GraphQL spec, "Response Format") and
    // is a 400 under the GraphQL-over-HTTP media type; under application/json it stays 200.
    let request_error = match &response {
        BatchResponse::Single(r) => {
            !r.errors.is_empty()
                && r.data == async_graphql::Value::Null
                && r.errors.iter().all(|e| e.path.is_empty())
        }
        BatchResponse::Batch(_) => false,
    };
    let mut http_response = match (&response, request_error) {
        (BatchResponse::Single(r), true) => {
            let body = RequestErrors {
                errors: &r.errors,
                extensions: &r.extensions,
            };
            let mut http_response = axum::Json(body).into_response();
            if media == Media::GraphqlResponseJson {
                *http_response.status_mut() = StatusCode::BAD_REQUEST;
            }
            http_response
        }
        _ => GraphQLResponse::from(response).into_response(),
    };
    let content_type = match media {
        Media::GraphqlResponseJson => GRAPHQL_RESPONSE_JSON,
        Media::Json => "application/json",
    };
    http_response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(secs) = retry_after {
        http_response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    http_response
}

/// The body of a request error: `errors` (and any extensions), no `data`.
#[derive(serde::Serialize)]
struct RequestErrors<'a> {
    errors: &'a [ServerError],
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    extensions: &'a std::collections::BTreeMap<String, async_graphql::Value>,
}

/// A GraphQL-shaped error body for requests that never reached execution.
pub fn error_response(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "errors": [{ "message": message }] });
    (status, axum::Json(body)).into_response()
}
