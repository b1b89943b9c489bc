//! CORS from the allow-list and the security headers every response carries.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::Request;
use axum::response::Response;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use tower::{Layer, Service, ServiceExt};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::HttpSettings;

/// The policy of every response but the GraphiQL page (which sets its own).
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

fn cors_layer(settings: &HttpSettings) -> CorsLayer {
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

/// CORS from the allow-list: tower-http's [`CorsLayer`], run only for the requests CORS is
/// about, those with an `Origin` header and preflight `OPTIONS`. Any other request gets the
/// headers the layer gives a request without `Origin`, which depend on nothing in the
/// request; they are found once, by running the layer on such a request.
///
/// The layer builds and merges a header map for every request, and hyper clones the whole
/// middleware stack for every request, the layer's lists with it, for requests (servers,
/// scripts, same-origin pages) that CORS does not concern (see `bench/FINDINGS.md`).
#[derive(Clone)]
pub struct Cors {
    layer: Arc<CorsLayer>,
    /// What the layer adds to the response of a request without `Origin`.
    plain: Arc<[(HeaderName, HeaderValue)]>,
}

impl Cors {
    pub fn new(settings: &HttpSettings) -> Self {
        let layer = cors_layer(settings);
        let probe = layer.layer(tower::service_fn(|_: Request| async {
            Ok::<_, Infallible>(Response::new(axum::body::Body::empty()))
        }));
        let request = Request::post("/graphql")
            .body(axum::body::Body::empty())
            .expect("a valid request");
        let response = probe
            .oneshot(request)
            .now_or_never()
            .expect("the CORS layer answers without waiting")
            .unwrap_or_else(|never| match never {});
        let plain = response
            .headers()
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        Self {
            layer: Arc::new(layer),
            plain,
        }
    }
}

impl<S> Layer<S> for Cors {
    type Service = CorsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CorsService {
            inner,
            cors: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct CorsService<S> {
    inner: S,
    cors: Cors,
}

impl<S, B> Service<Request> for CorsService<S>
where
    S: Service<Request, Response = http::Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Default + Send + 'static,
{
    type Response = http::Response<B>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<http::Response<B>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if request.method() == Method::OPTIONS || request.headers().contains_key(header::ORIGIN) {
            let cors = self.cors.layer.layer(self.inner.clone());
            return Box::pin(cors.oneshot(request));
        }
        let plain = self.cors.plain.clone();
        let response = self.inner.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            let headers = response.headers_mut();
            // As the layer merges them: `Vary` appended to any the response has, the others
            // replacing.
            for (name, value) in plain.iter() {
                if name == header::VARY {
                    headers.append(name, value.clone());
                } else {
                    headers.insert(name, value.clone());
                }
            }
            Ok(response)
        })
    }
}

/// Nosniff, frame denial, no referrer, a strict CSP, no caching of tokens, and HSTS if
/// configured: added to every response that does not set its own.
#[derive(Clone)]
pub struct Headers(Arc<[(HeaderName, HeaderValue)]>);

impl Headers {
    pub fn new(settings: &HttpSettings) -> Self {
        let mut headers = vec![
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(API_CSP),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ];
        if let Some(age) = settings.hsts_max_age {
            let value =
                HeaderValue::from_str(&format!("max-age={}; includeSubDomains", age.as_secs()))
                    .expect("digits are a valid header value");
            headers.push((header::STRICT_TRANSPORT_SECURITY, value));
        }
        Self(headers.into())
    }

    pub fn add_to(&self, headers: &mut HeaderMap) {
        for (name, value) in self.0.iter() {
            headers.entry(name).or_insert_with(|| value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;

    use super::*;

    fn settings(origins: &[&str]) -> HttpSettings {
        HttpSettings {
            cors_allowed_origins: origins.iter().map(|o| o.to_string()).collect(),
            trusted_proxies: Vec::new(),
            max_body_bytes: 1024,
            hsts_max_age: None,
            ..crate::config::Settings::defaults().http
        }
    }

    #[tokio::test]
    async fn without_origin_the_headers_are_the_layers_and_with_one_the_layer_runs() {
        // An inner response with a `Vary` of its own, which CORS must add to.
        let inner = tower::service_fn(|_: Request| async {
            let mut response = Response::new(Body::empty());
            response
                .headers_mut()
                .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
            Ok::<_, Infallible>(response)
        });
        let request = |method: &Method, origin: Option<&str>| {
            let mut request = Request::builder().method(method).uri("/graphql");
            if let Some(origin) = origin {
                request = request.header(header::ORIGIN, origin);
            }
            request.body(Body::empty()).unwrap()
        };
        for origins in [&[][..], &["https://app.example.com"], &["*"]] {
            let settings = settings(origins);
            for method in [Method::GET, Method::POST, Method::OPTIONS] {
                for origin in [None, Some("https://app.example.com")] {
                    let ours = Cors::new(&settings)
                        .layer(inner)
                        .oneshot(request(&method, origin))
                        .await
                        .unwrap();
                    let layers = cors_layer(&settings)
                        .layer(inner)
                        .oneshot(request(&method, origin))
                        .await
                        .unwrap();
                    let what = format!("{origins:?} {method} {origin:?}");
                    assert_eq!(ours.status(), layers.status(), "{what}");
                    assert_eq!(ours.headers(), layers.headers(), "{what}");
                    // A list of origins varies the response by `Origin`; `*` does not.
                    if method != Method::OPTIONS && origins != ["*"] {
                        let vary: Vec<_> = ours.headers().get_all(header::VARY).iter().collect();
                        assert!(vary.len() >= 2, "{what}: {vary:?}");
                    }
                }
            }
        }
        // The allowed origin is echoed.
        let allowed = Cors::new(&settings(&["https://app.example.com"]))
            .layer(inner)
            .oneshot(request(&Method::POST, Some("https://app.example.com")))
            .await
            .unwrap();
        assert_eq!(
            allowed.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://app.example.com"
        );
    }
}
