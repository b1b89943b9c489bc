//! `GET /.well-known/jwks.json` and `GET /.well-known/openid-configuration`: the public
//! keys, and where to find them, for services that verify access tokens themselves.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use crate::auth::tokens::signing::KeyRing;
use crate::clock::Clock;
use crate::config::TokenSettings;

/// What the two documents are made from.
pub struct WellKnown {
    ring: Arc<KeyRing>,
    clock: Clock,
    issuer: String,
    /// `PUBLIC_URL`, else the issuer when it is an http(s) URL; else the request's `Host`.
    base: Option<String>,
    cache_control: HeaderValue,
}

impl WellKnown {
    pub fn new(ring: Arc<KeyRing>, clock: Clock, settings: &TokenSettings) -> Self {
        let base = settings
            .public_url
            .as_ref()
            .map(|u| u.as_str().to_owned())
            .or_else(|| {
                url::Url::parse(&settings.issuer)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                    .map(|u| u.as_str().to_owned())
            })
            .map(|b| b.trim_end_matches('/').to_owned());
        Self {
            ring,
            clock,
            issuer: settings.issuer.clone(),
            base,
            cache_control: cache_control(settings.jwks_max_age),
        }
    }
}

/// Verifiers may keep the documents this long; a rotation's new key is published longer
/// than that before it signs (see `TokenSettings::rotation_lead`).
fn cache_control(max_age: Duration) -> HeaderValue {
    HeaderValue::from_str(&format!("public, max-age={}", max_age.as_secs()))
        .expect("digits are a valid header value")
}

pub async fn jwks(State(state): State<Arc<AppState>>) -> Response {
    let known = &state.well_known;
    let document = known.ring.jwks(known.clock.now());
    cached(known, Json(document))
}

pub async fn openid_configuration(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Response {
    let known = &state.well_known;
    let base = match &known.base {
        Some(base) => base.clone(),
        None => match headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
            Some(host) if plausible_host(host) => format!("http://{host}"),
            _ => {
                return (
                    StatusCode::BAD_REQUEST,
                    "a Host header (or PUBLIC_URL) is needed to name the JWKS",
                )
                    .into_response();
            }
        },
    };
    let algorithms = known.ring.algorithms(known.clock.now());
    let document = json!({
        "issuer": known.issuer,
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "id_token_signing_alg_values_supported": algorithms,
        "token_endpoint_auth_signing_alg_values_supported": algorithms,
        "subject_types_supported": ["public"],
        "response_types_supported": ["token"],
        "claims_supported": ["sub", "sid", "jti", "iat", "exp", "iss", "aud", "typ"],
    });
    cached(known, Json(document))
}

fn cached(known: &WellKnown, body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, known.cache_control.clone());
    response
}

/// A host name or address with an optional port, nothing else (it goes into a URL).
fn plausible_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}
