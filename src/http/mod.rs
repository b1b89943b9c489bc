//! The HTTP surface: routes, middleware (request id, tracing, CORS, headers, limits).

mod client_ip;
mod graphql;
mod health;
mod security;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use http::{HeaderName, StatusCode};
use sea_orm::DatabaseConnection;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use client_ip::ClientIpResolver;
pub use graphql::GraphiqlPage;

use crate::config::Settings;
use crate::graphql::AppSchema;

/// A request that takes longer than this is answered 408 and dropped.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// The GraphQL schema, built once.
    pub schema: AppSchema,
    /// Probed by `/health`.
    pub db: DatabaseConnection,
    /// Finds the client address behind trusted proxies.
    pub client_ip: Arc<ClientIpResolver>,
    /// Most operations accepted in one batched POST.
    pub max_batch: usize,
    /// The playground page and its CSP, when enabled.
    pub graphiql: Option<Arc<graphql::GraphiqlPage>>,
}

/// Builds the router with every layer.
pub fn router(state: AppState, settings: &Settings) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let graphql_routes = Router::new()
        .route(
            "/graphql",
            get(graphql::get_handler).post(graphql::post_handler),
        )
        .layer(RequestBodyLimitLayer::new(settings.http.max_body_bytes));
    let app = Router::new()
        .route("/health", get(health::handler))
        .merge(graphql_routes)
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found") })
        .with_state(state)
        .layer(security::cors(&settings.http));
    security::with_headers(app, &settings.http).layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http().make_span_with(|req: &http::Request<_>| {
                        let id = req
                            .headers()
                            .get("x-request-id")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("-");
                        // The path only: query strings may carry tokens or variables.
                        tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
                    }),
                )
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(CatchPanicLayer::new())
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    REQUEST_TIMEOUT,
                )),
        )
}
