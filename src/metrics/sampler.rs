//! [`Sampler`]: the gauges read from elsewhere rather than counted (database pool, mail
//! outbox), taken every [`Sampler::EVERY`] by a job and, for the pool, at each scrape.

use std::time::Duration;

use metrics::Gauge;
use sea_orm::{DatabaseConnection, DatabaseConnectionType};

use super::{DB_POOL, MAIL_PENDING, Metrics};
use crate::jobs::MailQueue;

/// Reads the pool's and the outbox's state into their gauges.
#[derive(Clone)]
pub struct Sampler {
    metrics: Metrics,
    db: DatabaseConnection,
    outbox: MailQueue,
    in_use: Gauge,
    idle: Gauge,
    pending: Gauge,
}

impl Sampler {
    /// How often the job samples.
    pub const EVERY: Duration = Duration::from_secs(5);

    /// Samples `db`'s pool and `outbox` into `metrics` (nothing when it is off).
    pub fn new(metrics: Metrics, db: DatabaseConnection, outbox: MailQueue) -> Self {
        let on = metrics.is_on();
        let gauge = |make: fn() -> Gauge| if on { make() } else { Gauge::noop() };
        Self {
            in_use: gauge(|| metrics::gauge!(DB_POOL, "state" => "in_use")),
            idle: gauge(|| metrics::gauge!(DB_POOL, "state" => "idle")),
            pending: gauge(|| metrics::gauge!(MAIL_PENDING)),
            metrics,
            db,
            outbox,
        }
    }

    /// The metrics sampled into.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The pool's connections in use and idle: a read of the pool's counters, no query.
    pub fn sample_pool(&self) {
        let Some((in_use, idle)) = pool_connections(&self.db) else {
            return;
        };
        self.in_use.set(in_use as f64);
        self.idle.set(idle as f64);
    }

    /// Everything: the pool, the outbox's count (one query), and the recorder's upkeep.
    pub async fn sample(&self) {
        if !self.metrics.is_on() {
            return;
        }
        self.sample_pool();
        match self.outbox.pending().await {
            Ok(n) => self.pending.set(n as f64),
            Err(e) => tracing::warn!(error = %e, "could not count the mail outbox for metrics"),
        }
        self.metrics.upkeep();
    }
}

/// In use and idle connections of the sqlx pool behind `db`.
fn pool_connections(db: &DatabaseConnection) -> Option<(u32, u32)> {
    let (size, idle) = match &db.inner {
        DatabaseConnectionType::SqlxSqlitePoolConnection(_) => {
            let pool = db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle())
        }
        DatabaseConnectionType::SqlxPostgresPoolConnection(_) => {
            let pool = db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle())
        }
        DatabaseConnectionType::SqlxMySqlPoolConnection(_) => {
            let pool = db.get_mysql_connection_pool();
            (pool.size(), pool.num_idle())
        }
        _ => return None,
    };
    let idle = u32::try_from(idle).unwrap_or(u32::MAX).min(size);
    Some((size - idle, idle))
}
