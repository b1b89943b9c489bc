//! Metrics for operators: Prometheus text on a listener of its own (`METRICS_ADDR`), through
//! the `metrics` facade and `metrics-exporter-prometheus`.
//!
//! Off by default: then no recorder is installed and every facade call is a no-op. With
//! `METRICS_ADDR` set, [`Metrics::install`] installs the Prometheus recorder as the
//! process's global recorder, once per process (tests start many servers in one process:
//! they share it), and [`Exporter`] serves `GET /metrics` from it.
//!
//! Every metric, each label set bounded (no user ids, no client text):
//!
//! | metric | labels | where |
//! | --- | --- | --- |
//! | `auth_graphql_requests_total` (counter) | `operation`, `outcome` (`ok`, `error`) | the `/graphql` handler, per operation of a batch |
//! | `auth_graphql_request_duration_seconds` (histogram) | `operation` | the same |
//! | `auth_password_hash_queue_depth` (gauge) | | `auth::passwords` |
//! | `auth_password_hash_wait_seconds` (histogram) | | `auth::passwords` |
//! | `auth_db_pool_connections` (gauge) | `state` (`in_use`, `idle`) | sampled every 5 s and at each scrape |
//! | `auth_mail_outbox_pending` (gauge) | | sampled every 5 s |
//! | `auth_build_info` (gauge, 1) | `version` | set at install |
//! | `auth_logins_total` (counter) | `outcome` | the auth service |
//! | `auth_refreshes_total` (counter) | `outcome` | the auth service |
//! | `auth_rate_limited_total` (counter) | `limit` | the auth service |
//! | `auth_rate_limit_store_errors_total` (counter) | | Redis calls of the shared rate limits that failed or timed out |
//! | `auth_rate_limit_store_up` (gauge) | | 1 when the last Redis call answered, 0 when it failed |
//! | `auth_security_events_total` (counter) | `kind` | the auth service |
//! | `auth_read_batch_size` (histogram) | `read` (`session`) | keys read per statement by the batched reads (PostgreSQL, MySQL/MariaDB; `store::batch`) |
//!
//! `operation` is a root field of the schema, `introspection` or `other`
//! ([`crate::graphql::Operation`]). The metrics recorded here go through handles taken
//! when a server is built, so a server built without `METRICS_ADDR` records none of them
//! even in a process where another server installed the recorder; the auth service's
//! counters use the facade's macros directly and count for the whole process.

mod exporter;
mod graphql;
mod sampler;

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub use exporter::Exporter;
pub use graphql::GraphqlMetrics;
pub use sampler::Sampler;

/// Requests by GraphQL operation and outcome.
pub const GRAPHQL_REQUESTS: &str = "auth_graphql_requests_total";
/// Time to answer one GraphQL operation, by operation.
pub const GRAPHQL_DURATION: &str = "auth_graphql_request_duration_seconds";
/// Hashes and verifications waiting for a hashing thread.
pub const HASH_QUEUE_DEPTH: &str = "auth_password_hash_queue_depth";
/// Time a hash or verification waited for a hashing thread.
pub const HASH_WAIT: &str = "auth_password_hash_wait_seconds";
/// Database connections of the pool, by state.
pub const DB_POOL: &str = "auth_db_pool_connections";
/// Mails in the outbox, not yet delivered.
pub const MAIL_PENDING: &str = "auth_mail_outbox_pending";
/// Always 1; the version is the label.
pub const BUILD_INFO: &str = "auth_build_info";
/// Keys read per statement by the batched reads (PostgreSQL, MySQL/MariaDB), by read.
pub const READ_BATCH_SIZE: &str = "auth_read_batch_size";

/// Buckets of [`READ_BATCH_SIZE`]: the batch widths, 1 to 64.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

/// Histogram buckets of every `_seconds` metric: 0.5 ms to 10 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Why metrics could not be turned on.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MetricsError(String);

/// The recorder's handle, when this process installed it.
static INSTALLED: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

/// Installs the Prometheus recorder as the global recorder on the first call; every call
/// returns its handle.
fn install_once() -> Result<PrometheusHandle, MetricsError> {
    INSTALLED
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(READ_BATCH_SIZE.to_owned()),
                        BATCH_BUCKETS,
                    )
                })
                .and_then(PrometheusBuilder::install_recorder)
                .map_err(|e| e.to_string())?;
            describe();
            metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            Ok(handle)
        })
        .clone()
        .map_err(MetricsError)
}

/// The `# HELP` lines.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        GRAPHQL_REQUESTS,
        "GraphQL operations answered, by operation and outcome"
    );
    describe_histogram!(
        GRAPHQL_DURATION,
        Unit::Seconds,
        "Time to answer one GraphQL operation, by operation"
    );
    describe_gauge!(
        HASH_QUEUE_DEPTH,
        "Password hashes waiting for a hashing thread"
    );
    describe_histogram!(
        HASH_WAIT,
        Unit::Seconds,
        "Time a password hash waited for a hashing thread"
    );
    describe_gauge!(
        DB_POOL,
        "Database pool connections, by state (in_use, idle)"
    );
    describe_gauge!(MAIL_PENDING, "Mails in the outbox not yet delivered");
    describe_gauge!(BUILD_INFO, "Always 1; the server's version is the label");
    describe_counter!("auth_logins_total", "Login attempts, by outcome");
    describe_counter!(
        "auth_refreshes_total",
        "Refresh token presentations, by outcome"
    );
    describe_counter!(
        "auth_rate_limited_total",
        "Requests refused by a rate limit, by limit"
    );
    describe_counter!(
        "auth_rate_limit_store_errors_total",
        "Calls to the shared rate limits' Redis that failed or timed out"
    );
    describe_gauge!(
        "auth_rate_limit_store_up",
        "1 when the last call to the shared rate limits' Redis answered, 0 when it failed"
    );
    describe_counter!(
        "auth_security_events_total",
        "Security events recorded, by kind"
    );
    describe_histogram!(
        READ_BATCH_SIZE,
        "Keys read per statement by the batched reads (PostgreSQL, MySQL/MariaDB), by read \
         (session: the bearer guard)"
    );
}

/// One server's metrics: the recorder's handle and the handles of what it records itself.
/// Without `METRICS_ADDR` it is [`Metrics::off`]: nothing is recorded or served.
#[derive(Clone)]
pub struct Metrics {
    handle: Option<PrometheusHandle>,
    graphql: GraphqlMetrics,
}

impl Metrics {
    /// Records nothing.
    pub fn off() -> Self {
        Self {
            handle: None,
            graphql: GraphqlMetrics::off(),
        }
    }

    /// Installs the recorder (once per process) and takes this server's handles. Fails
    /// when another recorder is installed already.
    pub fn install() -> Result<Self, MetricsError> {
        let handle = install_once()?;
        Ok(Self {
            handle: Some(handle),
            graphql: GraphqlMetrics::on(),
        })
    }

    /// Whether anything is recorded.
    pub fn is_on(&self) -> bool {
        self.handle.is_some()
    }

    /// The per-operation request metrics.
    pub fn graphql(&self) -> &GraphqlMetrics {
        &self.graphql
    }

    /// The exposition text, when on.
    pub fn render(&self) -> Option<String> {
        self.handle.as_ref().map(PrometheusHandle::render)
    }

    /// Drains what the recorder buffers (histogram samples), so memory stays bounded
    /// between scrapes.
    pub fn upkeep(&self) {
        if let Some(handle) = &self.handle {
            handle.run_upkeep();
        }
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("on", &self.is_on())
            .finish()
    }
}
