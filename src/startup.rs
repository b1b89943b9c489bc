//! `Application`: wires settings, database, auth service, schema and router, and serves.

use std::net::SocketAddr;
use std::sync::Arc;

use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;

use crate::auth::AuthService;
use crate::clock::Clock;
use crate::config::{HttpSettings, Settings};
use crate::graphql::Executor;
use crate::http::{AppState, ClientIpResolver, Draining, routes};
use crate::jobs::{Jobs, MailQueue, MailWorker};
use crate::mail::{Mailer, Sealer, Templates};
use crate::metrics::{Exporter, Metrics, Sampler};
use crate::store::Store;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("could not bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("SMTP_URL: {0}")]
    Mail(#[from] lettre::transport::smtp::Error),
    #[error("MAIL_TEMPLATES_DIR: {0}")]
    Templates(#[from] crate::mail::TemplateError),
    #[error("signing keys: {0}")]
    Keys(#[from] crate::auth::tokens::signing::StartError),
    #[error("METRICS_ADDR: {0}")]
    Metrics(#[from] crate::metrics::MetricsError),
}

/// What the server is handed rather than building itself, so that tests can substitute
/// them.
#[derive(Debug, Clone, Default)]
pub struct Collaborators {
    /// The time every expiry is judged by (rate limiters keep their own).
    pub clock: Clock,
}

/// A built server, bound to its port, not yet serving.
pub struct Application {
    listener: TcpListener,
    routes: axum::Router,
    http: HttpSettings,
    /// The database pool's size: descriptors the connection bound leaves free.
    database_connections: usize,
    auth: Arc<AuthService>,
    /// The outbox's worker, started with the server (and handed to tests).
    mail: MailWorker,
    /// How often the stored signing keys are re-read.
    keys_reload: std::time::Duration,
    /// The `METRICS_ADDR` listener, bound; `None` when metrics are off.
    exporter: Option<Exporter>,
    /// Samples the pool and outbox gauges (a no-op when metrics are off).
    sampler: Sampler,
    /// Turned on when a shutdown signal starts the `SHUTDOWN_DRAIN`.
    draining: Draining,
}

impl Application {
    /// Connects, migrates, builds the schema and binds (port 0 picks a free port).
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        Self::build_with(settings, Collaborators::default()).await
    }

    /// As [`build`](Self::build), with the given collaborators.
    pub async fn build_with(
        settings: Settings,
        collaborators: Collaborators,
    ) -> Result<Self, StartupError> {
        for warning in &settings.warnings {
            tracing::warn!("{warning}");
        }
        let db = crate::db::connect(&settings.database).await?;
        // Under a lock shared with every other instance on this database, and so is the
        // first signing key: instances started together make one between them.
        let now = collaborators.clock.now();
        crate::migrate::up_then(&settings.database, async |conn: &DatabaseConnection| {
            first_signing_key(conn, &settings, now).await
        })
        .await?;
        Self::assemble(settings, db, collaborators).await
    }

    /// As [`build`](Self::build), on an already connected and migrated database.
    pub async fn build_with_db(
        settings: Settings,
        db: DatabaseConnection,
    ) -> Result<Self, StartupError> {
        Self::assemble(settings, db, Collaborators::default()).await
    }

    async fn assemble(
        settings: Settings,
        db: DatabaseConnection,
        collaborators: Collaborators,
    ) -> Result<Self, StartupError> {
        use secrecy::ExposeSecret;
        // Before anything takes metric handles (the password hasher does).
        let (metrics, metrics_listener) = match settings.metrics_addr {
            Some(addr) => {
                let metrics = Metrics::install()?;
                let listener = bind(addr).map_err(|source| StartupError::Bind { addr, source })?;
                (metrics, Some(listener))
            }
            None => (Metrics::off(), None),
        };
        let outbox = Store::new(db.clone(), settings.database.url.expose_secret());
        let queue = MailQueue::new(
            Arc::new(outbox),
            collaborators.clock.clone(),
            Sealer::new(&settings.tokens),
        );
        let mail = MailWorker::new(queue.clone(), Mailer::new(&settings.mail)?);
        let templates = Templates::load(settings.mail.templates_dir.as_deref())?;
        let auth = Arc::new(
            AuthService::with_clock(db.clone(), &settings, collaborators.clock.clone())
                .with_mail(templates, queue.waker())
                .with_group_commit(&settings)
                .await,
        );
        auth.start_signing_keys(&settings).await?;
        let sampler = Sampler::new(metrics.clone(), db.clone(), queue.clone());
        let exporter = metrics_listener.map(|listener| Exporter::new(listener, sampler.clone()));
        let draining = Draining::default();
        let state = AppState {
            draining: draining.clone(),
            executor: Executor::new(auth.clone(), &settings.graphql),
            health: crate::storage::HealthCheck::new(db, auth.database_file()),
            client_ip: ClientIpResolver::new(settings.http.trusted_proxies.clone()),
            max_batch: settings.graphql.max_batch,
            metrics: metrics.graphql().clone(),
            graphiql: settings
                .graphql
                .graphiql
                .then(crate::http::GraphiqlPage::new),
            well_known: crate::http::WellKnown::new(
                auth.signing_keys().clone(),
                collaborators.clock.clone(),
                &settings.tokens,
            ),
        };
        let addr = SocketAddr::new(settings.host, settings.port);
        let listener = bind(addr).map_err(|source| StartupError::Bind { addr, source })?;
        Ok(Self {
            listener,
            routes: routes(state),
            http: settings.http,
            database_connections: usize::try_from(settings.database.max_connections)
                .unwrap_or(usize::MAX),
            auth,
            mail,
            keys_reload: settings.tokens.keys_reload,
            exporter,
            sampler,
            draining,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The port `GET /metrics` is served on; `None` without `METRICS_ADDR`.
    pub fn metrics_port(&self) -> Option<u16> {
        self.exporter.as_ref().map(Exporter::port)
    }

    /// The auth service, for tests that drive it beside the HTTP API (e.g. reloading the
    /// signing keys without waiting for the job).
    pub fn auth(&self) -> Arc<AuthService> {
        self.auth.clone()
    }

    /// The mail worker: its queue takes mails, and tests call its `dispatch_pending`.
    pub fn mail(&self) -> MailWorker {
        self.mail.clone()
    }

    /// Serves until Ctrl-C or SIGTERM, then for `SHUTDOWN_DRAIN` keeps serving while
    /// `/health` answers 503 (a second signal cuts that short), then stops accepting and
    /// lets in-flight requests finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let draining = self.draining.clone();
        let drain = self.http.shutdown_drain;
        self.run_until(async move {
            shutdown_signal().await;
            if let Some(drain) = drain {
                draining.start();
                tracing::info!(
                    ?drain,
                    "draining: /health answers 503, requests are still served"
                );
                tokio::select! {
                    () = tokio::time::sleep(drain) => {}
                    () = shutdown_signal() => {}
                }
            }
        })
        .await
    }

    /// Serves until `stop` completes.
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let jobs = Jobs::start(self.auth.clone(), self.mail.clone(), self.keys_reload)
            .with_metrics(self.sampler);
        // The metrics listener stops when the API's does (a scrape meanwhile is answered).
        let (stopped, on_stop) = tokio::sync::watch::channel(false);
        let exporter = self.exporter.map(|exporter| {
            let mut on_stop = on_stop;
            tokio::spawn(exporter.serve(async move {
                let _ = on_stop.wait_for(|stopped| *stopped).await;
            }))
        });
        let events = self.auth.start_event_writer();
        if let Ok(addr) = self.listener.local_addr() {
            tracing::info!(%addr, "listening");
        }
        let served = crate::http::serve(
            self.listener,
            self.routes,
            &self.http,
            self.database_connections,
            stop,
        )
        .await;
        let _ = stopped.send(true);
        if let Some(exporter) = exporter {
            match exporter.await {
                Ok(Err(e)) => tracing::warn!(error = %e, "the metrics listener failed"),
                Err(e) => tracing::warn!(error = %e, "the metrics listener panicked"),
                Ok(Ok(())) => {}
            }
        }
        jobs.stop();
        // In-flight requests are answered: store the security events they left buffered.
        events.finish().await;
        served
    }
}

/// In development, makes the first stored signing key if none can sign (production
/// refuses to start instead; see `AuthService::start_signing_keys`). Run under the
/// migration lock, on its connection. Not on SQLite, whose lock is a transaction open on
/// that connection: there the key is made after the lock, as before.
async fn first_signing_key(
    conn: &DatabaseConnection,
    settings: &Settings,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), StartupError> {
    use crate::auth::tokens::signing::{StartError, admin};
    use secrecy::ExposeSecret;
    let stored = matches!(
        settings.tokens.key_source,
        crate::config::KeySource::Database { .. }
    );
    if settings.environment != crate::config::Environment::Development
        || !stored
        || conn.get_database_backend() == sea_orm::DatabaseBackend::Sqlite
    {
        return Ok(());
    }
    let store = Store::new(conn.clone(), settings.database.url.expose_secret());
    let made = admin::ensure_signing_key(&store, &settings.tokens, now)
        .await
        .map_err(StartError::from)?;
    if let Some(kid) = made {
        tracing::warn!(
            %kid,
            "no signing key was stored; made one (in production, run `auth-server keys rotate`)"
        );
    }
    Ok(())
}

/// Connections waiting to be accepted (the kernel caps it at `net.core.somaxconn`): where
/// new clients wait while `HTTP_MAX_CONNECTIONS` are open. The usual 128 would make
/// clients beyond it retry their handshake after a second or more.
const LISTEN_BACKLOG: u32 = 1024;

/// Binds `addr` (with `SO_REUSEADDR`, as the standard library does) and listens with
/// [`LISTEN_BACKLOG`].
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
