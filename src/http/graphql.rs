//! `/graphql`: the POST and GET handlers (GraphiQL on a GET without a query), batching,
//! and execution with the caller's context, recording each operation's count and latency
//! (`crate::metrics`). Media types and response shaping are in
//! `media`, the playground in `graphiql`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use async_graphql::BatchRequest;
use async_graphql::parser::types::OperationType;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, Request, State};
use axum::response::Response;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};

use super::AppState;
use super::media::{Media, error_response, is_json, negotiate, not_acceptable, shape};
use crate::graphql::RequestContext;
use crate::nesting;

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
            Some(page) if method == Method::GET => page.response(),
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
    let user_agent = headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    // One context per operation: a batched `logout` must not leave a cached caller
    // for the operations after it.
    let context = || RequestContext::new(client_ip, user_agent, bearer.clone());
    let request = match request {
        BatchRequest::Single(r) => BatchRequest::Single(r.data(context())),
        BatchRequest::Batch(rs) => {
            BatchRequest::Batch(rs.into_iter().map(|r| r.data(context())).collect())
        }
    };
    // Each operation of a batch is timed from the batch's start: they run concurrently.
    let started = state.metrics.is_on().then(Instant::now);
    let response = state
        .executor
        .execute_batch(request, |operation, response| {
            if let Some(started) = started {
                state
                    .metrics
                    .record(operation, response.is_ok(), started.elapsed());
            }
        })
        .await;
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
