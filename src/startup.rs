//! `Application`: wires settings, database, auth service, schema and router, and serves.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;

use crate::auth::AuthService;
use crate::clock::Clock;
use crate::config::{HttpSettings, Settings};
use crate::graphql::Executor;
use crate::http::{AppState, ClientIpResolver, routes};

/// How often idle rate-limit keys are forgotten.
const LIMITER_SWEEP: Duration = Duration::from_secs(60);
/// How often dead sessions and expired refresh tokens are deleted.
const SESSION_PURGE: Duration = Duration::from_secs(3600);
/// Revoked or expired sessions are kept this long (for support and audit) before deletion.
const KEEP_DEAD_SESSIONS: chrono::Duration = chrono::Duration::days(1);

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
}

/// What the server is handed rather than building itself, so that tests can substitute
/// them (later also the mailer and the metrics handle).
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
        // Under a lock shared with every other instance on this database.
        crate::migrate::run(&settings.database, crate::migrate::Action::Up).await?;
        Self::assemble(settings, db, collaborators)
    }

    /// As [`build`](Self::build), on an already connected and migrated database.
    pub async fn build_with_db(
        settings: Settings,
        db: DatabaseConnection,
    ) -> Result<Self, StartupError> {
        Self::assemble(settings, db, Collaborators::default())
    }

    fn assemble(
        settings: Settings,
        db: DatabaseConnection,
        collaborators: Collaborators,
    ) -> Result<Self, StartupError> {
        let auth = Arc::new(AuthService::with_clock(
            db.clone(),
            &settings,
            collaborators.clock,
        ));
        let state = AppState {
            executor: Executor::new(auth.clone(), &settings.graphql),
            health: crate::storage::HealthCheck::new(db, auth.database_file()),
            client_ip: ClientIpResolver::new(settings.http.trusted_proxies.clone()),
            max_batch: settings.graphql.max_batch,
            graphiql: settings
                .graphql
                .graphiql
                .then(crate::http::GraphiqlPage::new),
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
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves until Ctrl-C or SIGTERM, then drains in-flight requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` completes.
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let auth = self.auth.clone();
        tokio::spawn(async move {
            if let Err(e) = auth.passwords().warm_up().await {
                tracing::warn!(error = %e, "could not precompute the dummy password hash");
            }
        });
        let limits = self.auth.limits().clone();
        let sweeper = tokio::spawn(async move {
            let mut tick = tokio::time::interval(LIMITER_SWEEP);
            loop {
                tick.tick().await;
                limits.forget_idle();
            }
        });
        let auth = self.auth.clone();
        let purger = tokio::spawn(async move {
            let mut tick = tokio::time::interval(SESSION_PURGE);
            loop {
                tick.tick().await;
                match auth.purge_dead_sessions(KEEP_DEAD_SESSIONS).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(rows = n, "purged dead sessions and expired tokens"),
                    Err(e) => tracing::warn!(error = %e, "session purge failed; will retry"),
                }
            }
        });
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
        sweeper.abort();
        purger.abort();
        served
    }
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
