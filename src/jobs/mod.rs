//! The background work of a serving instance, in one place: the dummy password hash's
//! warm-up, the rate limiter's sweep, the purge of dead sessions, the re-reading of the
//! stored signing keys, the mail worker, and the metrics sampler (`metrics.rs`).
//!
//! Started by `Application::run_until` with one call and stopped with the server. Each
//! loop survives its own failures (logged, retried at its next turn); none of them is
//! needed for a request to be answered.

pub mod mail;
mod metrics;

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

pub use mail::{MailQueue, MailWorker, Outcome};

use crate::auth::AuthService;

/// How often idle rate-limit keys are forgotten.
const LIMITER_SWEEP: Duration = Duration::from_secs(60);
/// How often dead sessions and expired refresh tokens are deleted.
const SESSION_PURGE: Duration = Duration::from_secs(3600);
/// Revoked or expired sessions are kept this long (for support and audit) before deletion.
const KEEP_DEAD_SESSIONS: chrono::Duration = chrono::Duration::days(1);

/// The running background tasks; dropping it (or [`stop`](Self::stop)) ends them.
pub struct Jobs {
    tasks: Vec<JoinHandle<()>>,
}

impl Jobs {
    /// Spawns every background task on the current runtime.
    pub fn start(auth: Arc<AuthService>, mail: MailWorker, keys_reload: Duration) -> Self {
        let tasks = vec![
            tokio::spawn(reload_signing_keys(auth.clone(), keys_reload)),
            tokio::spawn(warm_up(auth.clone())),
            tokio::spawn(sweep_limiter(auth.clone())),
            tokio::spawn(purge_sessions(auth)),
            tokio::spawn(mail.run()),
        ];
        Self { tasks }
    }

    /// Ends every task. A mail being sent at that moment keeps its claim until the claim
    /// lapses, and is then sent again: delivery is at least once.
    pub fn stop(self) {}
}

impl Drop for Jobs {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Precomputes the hash that unknown logins are checked against, so the first one does
/// not take longer than the rest.
async fn warm_up(auth: Arc<AuthService>) {
    if let Err(e) = auth.passwords().warm_up().await {
        tracing::warn!(error = %e, "could not precompute the dummy password hash");
    }
}

async fn sweep_limiter(auth: Arc<AuthService>) {
    let limits = auth.limits().clone();
    let mut tick = tokio::time::interval(LIMITER_SWEEP);
    loop {
        tick.tick().await;
        limits.forget_idle();
    }
}

/// Every `SIGNING_KEYS_RELOAD`, so that a `keys rotate` or `keys retire` run anywhere is
/// in force here within that time (configured keys never change: nothing to read).
async fn reload_signing_keys(auth: Arc<AuthService>, every: Duration) {
    if !auth.signing_keys().is_stored() {
        return;
    }
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate, and start-up has just loaded them
    loop {
        tick.tick().await;
        if let Err(e) = auth.reload_signing_keys().await {
            tracing::warn!(error = %e, "could not re-read the signing keys; keeping those held");
        }
    }
}

async fn purge_sessions(auth: Arc<AuthService>) {
    let mut tick = tokio::time::interval(SESSION_PURGE);
    loop {
        tick.tick().await;
        match auth.purge_dead_sessions(KEEP_DEAD_SESSIONS).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "purged dead sessions and expired tokens"),
            Err(e) => tracing::warn!(error = %e, "session purge failed; will retry"),
        }
    }
}
