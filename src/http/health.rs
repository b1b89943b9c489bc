//! `GET /health`: the process answers, and whether the database takes writes (it answers,
//! its SQLite file is still the one opened, and a write commits; see `crate::storage`).
//! While the instance drains before a shutdown (`SHUTDOWN_DRAIN`), 503 `draining`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;

/// The probe gives up after this, so `/health` never hangs on a dead database.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Set when a shutdown begins with a drain: `/health` then answers 503, so load balancers
/// send nothing new, while requests are still served until the listener closes.
#[derive(Clone, Debug, Default)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    pub fn start(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn is_on(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

pub async fn handler(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Value>) {
    if state.draining.is_on() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "draining"})),
        );
    }
    let up = matches!(
        tokio::time::timeout(PROBE_TIMEOUT, state.health.database_up()).await,
        Ok(true)
    );
    if up {
        (
            StatusCode::OK,
            Json(json!({"status": "ok", "database": "up"})),
        )
    } else {
        tracing::warn!("health probe: database unreachable");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "degraded", "database": "down"})),
        )
    }
}
