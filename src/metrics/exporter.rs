//! [`Exporter`]: the `METRICS_ADDR` listener. It serves `GET /metrics` and nothing else
//! (every other path is a 404), apart from the API's listener, so the metrics can stay on
//! a private interface.

use std::future::Future;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{StatusCode, header};
use tokio::net::TcpListener;

use super::Sampler;

/// The bound metrics listener, not yet serving.
pub struct Exporter {
    listener: TcpListener,
    sampler: Sampler,
}

impl Exporter {
    /// Serves what `sampler`'s metrics hold (sampling the pool at each scrape) on `listener`.
    pub fn new(listener: TcpListener, sampler: Sampler) -> Self {
        Self { listener, sampler }
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves until `stop` completes.
    pub async fn serve(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        if let Ok(addr) = self.listener.local_addr() {
            tracing::info!(%addr, "metrics listening");
        }
        let routes = Router::new()
            .route("/metrics", get(render))
            .with_state(self.sampler);
        axum::serve(self.listener, routes)
            .with_graceful_shutdown(stop)
            .await
    }
}

/// The Prometheus text exposition format, version 0.0.4.
async fn render(State(sampler): State<Sampler>) -> Response {
    sampler.sample_pool();
    match sampler.metrics().render() {
        Some(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
