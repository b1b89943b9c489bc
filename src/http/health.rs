//! `GET /health`: the process answers, and whether the database takes writes (it answers,
//! its SQLite file is still the one opened, and a write commits; see `crate::storage`).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;

/// The probe gives up after this, so `/health` never hangs on a dead database.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn handler(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Value>) {
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
