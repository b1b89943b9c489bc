//! Schema migrations under a lock shared by every process on the same database, so that
//! instances started at once never apply the same migration twice.
//!
//! The lock lives on one dedicated connection (a pool of exactly one, never tested,
//! recycled or timed out while it is held), and every migration statement runs on that
//! same connection:
//!
//! - PostgreSQL: a session advisory lock (`pg_advisory_lock`), per database, waited for
//!   at most `DATABASE_MIGRATION_LOCK_TIMEOUT` (`lock_timeout`).
//! - MySQL / MariaDB: `GET_LOCK` on a name derived from the database name, with the same
//!   bound.
//! - SQLite: the database's own write lock, taken with `BEGIN IMMEDIATE` (busy wait
//!   bounded the same way); the migrations run inside that transaction, so they also
//!   apply all or nothing.
//!
//! The lock is released on every path: explicitly after success or failure, and in any
//! case when the dedicated connection closes (each of these locks belongs to its
//! session, so a process that dies mid-migration cannot leave it held). Whoever waited
//! then finds the migrations applied and has nothing left to do.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, DbErr,
    Statement,
};
use secrecy::ExposeSecret;

use crate::config::DatabaseSettings;

/// The PostgreSQL advisory lock key (advisory locks are per database): the first eight
/// bytes of SHA-256("auth-server migrations") as a signed big-endian integer, so it does
/// not collide by accident with another application's small integer keys.
pub const POSTGRES_LOCK_KEY: i64 = -6_682_472_021_701_543_870;

/// Prefix of the MySQL / MariaDB `GET_LOCK` name; the database name follows, since
/// `GET_LOCK` names are server-wide and each database migrates on its own.
pub const MYSQL_LOCK_PREFIX: &str = "auth_server_migrations.";

/// The SQL expression of the `GET_LOCK` name (names are limited to 64 characters).
fn mysql_lock_name() -> String {
    format!("LEFT(CONCAT('{MYSQL_LOCK_PREFIX}', DATABASE()), 64)")
}

/// Pause between attempts to open a SQLite file another process has locked.
const SQLITE_OPEN_RETRY: Duration = Duration::from_millis(100);

/// What to do once the lock is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Apply every pending migration (`serve` at start-up, `migrate up`).
    Up,
    /// Roll back the last `steps` applied migrations.
    Down { steps: u32 },
    /// Drop every table and apply all migrations again.
    Fresh,
    /// Read which migrations are applied (creating the bookkeeping table if needed).
    Status,
}

/// One line of `migrate status`: the migration's name and whether it is applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationState {
    /// The migration's name, e.g. `m20261122_000001_create_users`.
    pub name: String,
    /// `Applied` or `Pending`, as sea-orm-migration spells them.
    pub status: String,
}

/// Runs `action` while holding the migration lock of the database in `settings`; waits
/// for the lock at most `settings.migration_lock_timeout`. Returns the migration states
/// for [`Action::Status`] and nothing otherwise.
pub async fn run(
    settings: &DatabaseSettings,
    action: Action,
) -> Result<Vec<MigrationState>, DbErr> {
    session(settings, action, async |_: &DatabaseConnection| {
        Ok::<(), DbErr>(())
    })
    .await
}

/// As [`run`] with [`Action::Up`], then `then` on the lock's own connection before the lock
/// is released: start-up work that exactly one of the instances started together must do
/// (making the first signing key), after the migrations it needs.
pub async fn up_then<E: From<DbErr>>(
    settings: &DatabaseSettings,
    then: impl AsyncFnOnce(&DatabaseConnection) -> Result<(), E>,
) -> Result<(), E> {
    session(settings, Action::Up, then).await.map(drop)
}

/// One session on the lock's connection: [`locked`], then the connection closed.
async fn session<E: From<DbErr>>(
    settings: &DatabaseSettings,
    action: Action,
    then: impl AsyncFnOnce(&DatabaseConnection) -> Result<(), E>,
) -> Result<Vec<MigrationState>, E> {
    let conn = open_dedicated(settings).await?;
    let result = locked(&conn, action, settings.migration_lock_timeout, then).await;
    // Closing the session releases the lock even where releasing it explicitly failed.
    let closed = conn.close().await;
    // The migrations' own error matters more than a failure to close.
    let states = result?;
    closed?;
    Ok(states)
}

/// The lock's [`dedicated_connection`], opened by the deadline.
async fn open_dedicated(settings: &DatabaseSettings) -> Result<DatabaseConnection, DbErr> {
    let deadline = tokio::time::Instant::now() + settings.migration_lock_timeout;
    loop {
        match dedicated_connection(settings).await {
            Ok(conn) => return Ok(conn),
            // Switching a new SQLite file to WAL needs a lock another process may hold, and
            // SQLite refuses that at once instead of waiting: retry until the deadline.
            Err(e) if is_sqlite_busy(&e) => {
                if tokio::time::Instant::now() >= deadline {
                    return Err(lock_wait_error(settings.migration_lock_timeout));
                }
                tokio::time::sleep(SQLITE_OPEN_RETRY).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Acquires the lock, runs `action` and then `then`, and releases the lock whatever the
/// outcome.
async fn locked<E: From<DbErr>>(
    conn: &DatabaseConnection,
    action: Action,
    timeout: Duration,
    then: impl AsyncFnOnce(&DatabaseConnection) -> Result<(), E>,
) -> Result<Vec<MigrationState>, E> {
    let backend = conn.get_database_backend();
    acquire(conn, backend, timeout).await?;
    let outcome = match apply(conn, action).await {
        Ok(states) => then(conn).await.map(|()| states),
        Err(e) => Err(e.into()),
    };
    let released = release(conn, backend, outcome.is_ok()).await;
    let states = outcome?;
    released?;
    Ok(states)
}

async fn apply(conn: &DatabaseConnection, action: Action) -> Result<Vec<MigrationState>, DbErr> {
    match action {
        Action::Up => Migrator::up(conn, None).await?,
        Action::Down { steps } => Migrator::down(conn, Some(steps)).await?,
        Action::Fresh => Migrator::fresh(conn).await?,
        Action::Status => {
            return Ok(Migrator::get_migration_with_status(conn)
                .await?
                .iter()
                .map(|m| MigrationState {
                    name: m.name().to_owned(),
                    status: m.status().to_string(),
                })
                .collect());
        }
    }
    Ok(Vec::new())
}

/// A pool of exactly one connection that is never pinged, recycled or idled out, so the
/// session that takes the lock is the session that migrates and releases it. No statement
/// timeout: a migration of a large table may take longer than a request's statements.
async fn dedicated_connection(settings: &DatabaseSettings) -> Result<DatabaseConnection, DbErr> {
    let url = settings.url.expose_secret();
    let wait = settings.migration_lock_timeout;
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(1)
        .min_connections(1)
        .acquire_timeout(settings.acquire_timeout)
        .connect_timeout(settings.acquire_timeout)
        .test_before_acquire(false)
        .idle_timeout(None)
        .max_lifetime(None)
        .sqlx_logging(false);
    if url.starts_with("sqlite:") {
        options.map_sqlx_sqlite_opts(move |o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Full)
                // The wait for another process's write lock is the wait for the lock.
                .busy_timeout(wait)
                // Foreign keys are off while the schema changes, as SQLite's procedure
                // for schema changes asks; the pool's connections enforce them.
                .foreign_keys(false)
        });
    }
    Database::connect(options).await
}

async fn acquire(
    conn: &DatabaseConnection,
    backend: DatabaseBackend,
    timeout: Duration,
) -> Result<(), DbErr> {
    let waited_too_long = || lock_wait_error(timeout);
    match backend {
        DatabaseBackend::Postgres => {
            let ms = timeout.as_millis().max(1);
            conn.execute_unprepared(&format!("SET lock_timeout = {ms}"))
                .await?;
            let locked = conn
                .execute_unprepared(&format!("SELECT pg_advisory_lock({POSTGRES_LOCK_KEY})"))
                .await;
            match locked {
                Ok(_) => conn
                    .execute_unprepared("SET lock_timeout = 0")
                    .await
                    .map(drop),
                // 55P03 lock_not_available: lock_timeout expired.
                Err(e) if e.to_string().contains("lock timeout") => Err(waited_too_long()),
                Err(e) => Err(e),
            }
        }
        DatabaseBackend::MySql => {
            let secs = timeout.as_secs().max(1);
            let row = conn
                .query_one_raw(Statement::from_string(
                    backend,
                    format!("SELECT GET_LOCK({}, {secs})", mysql_lock_name()),
                ))
                .await?;
            let got: Option<i64> = match row {
                Some(row) => row.try_get_by_index(0)?,
                None => None,
            };
            match got {
                Some(1) => Ok(()),
                Some(_) => Err(waited_too_long()),
                None => Err(DbErr::Custom(
                    "GET_LOCK failed to take the migration lock".to_owned(),
                )),
            }
        }
        DatabaseBackend::Sqlite => match conn.execute_unprepared("BEGIN IMMEDIATE").await {
            Ok(_) => Ok(()),
            Err(e) if is_sqlite_busy(&e) => Err(waited_too_long()),
            Err(e) => Err(e),
        },
        _ => Err(DbErr::Custom("unsupported database backend".to_owned())),
    }
}

/// Releases the lock; on SQLite commits the migrations' transaction when they succeeded,
/// and rolls it back when they failed.
async fn release(
    conn: &DatabaseConnection,
    backend: DatabaseBackend,
    succeeded: bool,
) -> Result<(), DbErr> {
    let sql = match backend {
        DatabaseBackend::Postgres => format!("SELECT pg_advisory_unlock({POSTGRES_LOCK_KEY})"),
        DatabaseBackend::MySql => format!("SELECT RELEASE_LOCK({})", mysql_lock_name()),
        _ if succeeded => "COMMIT".to_owned(),
        _ => "ROLLBACK".to_owned(),
    };
    conn.execute_unprepared(&sql).await.map(drop)
}

/// The error of a wait for the lock that lasted `timeout`.
fn lock_wait_error(timeout: Duration) -> DbErr {
    DbErr::Custom(format!(
        "gave up waiting for the migration lock after {} (another instance is migrating \
         this database, or holds the lock; raise DATABASE_MIGRATION_LOCK_TIMEOUT if \
         migrations take longer)",
        humantime::format_duration(timeout)
    ))
}

fn is_sqlite_busy(e: &DbErr) -> bool {
    let text = e.to_string();
    text.contains("database is locked") || text.contains("SQLITE_BUSY")
}
