//! The HTTP surface: routes, middleware (request id, tracing, CORS, headers, limits).

mod client_ip;
mod graphiql;
mod graphql;
mod health;
mod media;
mod security;
mod server;
mod well_known;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use axum::routing::get;
use http::{HeaderName, StatusCode};
use tokio::net::TcpListener;
use tower::{Service, ServiceBuilder};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use client_ip::ClientIpResolver;
pub use graphiql::GraphiqlPage;
pub use health::Draining;
pub use media::error_response;
pub use server::{connection_limit, raise_descriptor_limit};
pub use well_known::WellKnown;

use crate::config::HttpSettings;
use crate::graphql::Executor;

/// A request that takes longer than this is answered 408 and dropped.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Shared state of every handler.
pub struct AppState {
    /// Runs GraphQL operations on the schema, built once.
    pub executor: Executor,
    /// Probed by `/health`: the database answers, its file is ours, a write commits.
    pub health: crate::storage::HealthCheck,
    /// Finds the client address behind trusted proxies.
    pub client_ip: ClientIpResolver,
    /// Most operations accepted in one batched POST.
    pub max_batch: usize,
    /// Requests and latency per operation (records nothing when metrics are off).
    pub metrics: crate::metrics::GraphqlMetrics,
    /// The playground page and its CSP, when enabled.
    pub graphiql: Option<GraphiqlPage>,
    /// The JWKS and discovery documents.
    pub well_known: WellKnown,
    /// On during the shutdown drain: `/health` answers 503.
    pub draining: Draining,
}

/// The routes, without middleware (see [`serve`]).
pub fn routes(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health::handler))
        .route("/.well-known/jwks.json", get(well_known::jwks))
        .route(
            "/.well-known/openid-configuration",
            get(well_known::openid_configuration),
        )
        .route(
            "/graphql",
            get(graphql::get_handler).post(graphql::post_handler),
        )
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found") })
        .with_state(Arc::new(state))
}

/// `routes` inside every layer, outermost first: security headers, request id, the
/// request's log span, the id echoed in the response, panics as 500, the timeout, CORS and
/// the body limit.
///
/// The layers wrap the router as one service instead of going through `Router::layer`,
/// which boxes each layer around each route and clones the boxes on every request
/// (see `bench/FINDINGS.md`).
pub fn app(
    routes: Router,
    settings: &HttpSettings,
) -> impl Service<
    Request,
    Response = Response,
    Error = Infallible,
    Future = impl Future<Output = Result<Response, Infallible>> + Send + 'static,
> + Clone
+ Send
+ Sync
+ 'static {
    let request_id = HeaderName::from_static("x-request-id");
    let headers = security::Headers::new(settings);
    ServiceBuilder::new()
        .map_response(move |response: http::Response<_>| {
            let mut response = response.map(Body::new);
            headers.add_to(response.headers_mut());
            response
        })
        .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &http::Request<_>| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                // The id only: method and path are POST /graphql for nearly every request,
                // and formatting a span's fields is most of its cost.
                tracing::info_span!("request", request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(CatchPanicLayer::new())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(security::Cors::new(settings))
        .layer(RequestBodyLimitLayer::new(settings.max_body_bytes))
        .service(routes)
}

/// Serves `routes` with every layer on `listener` until `stop` completes, then drains
/// in-flight requests. Connections are bounded in number and time (see `server`);
/// `database_connections` is the pool size, whose descriptors the bound leaves free.
pub async fn serve(
    listener: TcpListener,
    routes: Router,
    settings: &HttpSettings,
    database_connections: usize,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app(routes, settings);
    server::serve(listener, app, settings, database_connections, stop).await
}
