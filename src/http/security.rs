//! CORS from the allow-list and the security headers every response carries.

use std::time::Duration;

use axum::Router;
use http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::config::HttpSettings;

/// The policy of every response but the GraphiQL page (which sets its own).
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

pub fn cors(settings: &HttpSettings) -> CorsLayer {
    let origins = &settings.cors_allowed_origins;
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok()),
        )
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
        .expose_headers([header::RETRY_AFTER, HeaderName::from_static("x-request-id")])
        .max_age(Duration::from_secs(600))
}

/// Adds nosniff, frame denial, no referrer, a strict CSP, no caching of tokens, and HSTS
/// if configured, to every response that does not set its own.
pub fn with_headers(router: Router, settings: &HttpSettings) -> Router {
    let set =
        |name: HeaderName, value: HeaderValue| SetResponseHeaderLayer::if_not_present(name, value);
    let mut router = router
        .layer(set(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(set(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(set(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(set(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(API_CSP),
        ))
        .layer(set(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));
    if let Some(age) = settings.hsts_max_age {
        let value = HeaderValue::from_str(&format!("max-age={}; includeSubDomains", age.as_secs()))
            .expect("digits are a valid header value");
        router = router.layer(set(header::STRICT_TRANSPORT_SECURITY, value));
    }
    router
}
