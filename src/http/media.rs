//! The media types of GraphQL over HTTP: the request's `Content-Type`, the response's
//! chosen from `Accept`, and the response shaped for it (status, headers, body).

use async_graphql::{BatchResponse, ServerError};
use async_graphql_axum::GraphQLResponse;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// Whether the request body is labelled `application/json` (parameters and case aside).
pub(super) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

/// The response media types of GraphQL over HTTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Media {
    /// `application/graphql-response+json`: request errors are 400.
    GraphqlResponseJson,
    /// `application/json`, for legacy clients: always 200 once the request is understood.
    Json,
}

/// Picks the response media type from `Accept` (q-values and wildcards honoured); `None`
/// when the client accepts neither, which is a 406. No `Accept` means `application/json`,
/// as does `*/*` (curl's default). At equal preference a client that names
/// `application/graphql-response+json` explicitly gets it.
pub(super) fn negotiate(headers: &HeaderMap) -> Option<Media> {
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
pub(super) fn not_acceptable() -> Response {
    error_response(
        StatusCode::NOT_ACCEPTABLE,
        "accept application/graphql-response+json or application/json",
    )
}

/// JSON body, the media type the client asked for, and `Retry-After` when rate-limited.
pub(super) fn shape(response: BatchResponse, media: Media) -> Response {
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
