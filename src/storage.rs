//! The database as storage: which pooled connections may be reused, whether the SQLite file
//! the server opened is still the one at its path, and whether a write commits right now.
//!
//! These answer one failure class: a write acknowledged to a client that no restart will
//! find. Four ways to get there, and the defence of each:
//!
//! - **A connection left inside a transaction.** sqlx counts transaction depth itself and
//!   only moves the count when its own `COMMIT`/`ROLLBACK` succeeds. When SQLite rolls a
//!   transaction back on its own (`SQLITE_FULL`, an I/O error), the `ROLLBACK` that follows
//!   fails (“no transaction is active”) and the count stays at 1. Back in the pool, that
//!   connection's next `BEGIN` became `SAVEPOINT` and its `COMMIT` a `RELEASE`; once a
//!   `ROLLBACK TO` had left the real transaction open, every later “commit” on it only
//!   released a savepoint inside a transaction that never committed, reported success, and
//!   held the write lock (everyone else: “database is locked”). [`reusable`] closes every
//!   connection that comes back to the pool while sqlx still counts it inside a transaction.
//! - **A `BEGIN` cancelled in flight** (the request dropped meanwhile): the database is
//!   inside a transaction that sqlx never counted, so the connection goes back to the pool
//!   looking clean and its next user runs inside it. [`begin_uncancellable`] lets every
//!   write's `BEGIN` finish in a task of its own.
//! - **Storage that cannot take a write** (disk full, read-only, I/O errors): a ping
//!   still answers. [`HealthCheck`] commits a small write that needs fresh pages.
//! - **The SQLite file deleted or replaced under the server**: its connections keep writing
//!   into the unlinked file. [`DatabaseFile`] compares the file opened at start with the one
//!   at the path now (device and inode); writes and `/health` refuse when they differ.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sea_orm::sqlx::sqlite::SqliteConnectOptions;
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DatabaseTransaction, DbErr, Statement,
    TransactionOptions, TransactionTrait,
};

/// Begins a transaction that a dropped caller cannot leave half begun.
///
/// sqlx counts a transaction only once its `BEGIN` has answered, and its clean-up on drop
/// rolls back only what it counted: a caller dropped while the `BEGIN` was in flight (a
/// client that hung up, a health check that timed out) left the database inside a
/// transaction that neither sqlx nor sea-orm knew of, and the pooled connection went back
/// to the pool that way. Its next user ran inside it: on PostgreSQL that user's writes were
/// never committed, on MariaDB its `SET TRANSACTION` failed. Here the `BEGIN` runs in a task
/// of its own, which finishes even when the caller is gone; the transaction it then returns
/// to nobody is dropped, and rolled back, as any other.
pub async fn begin_uncancellable(
    db: &DatabaseConnection,
    options: TransactionOptions,
) -> Result<DatabaseTransaction, DbErr> {
    let db = db.clone();
    tokio::spawn(async move { db.begin_with_options(options).await })
        .await
        .map_err(|e| DbErr::Custom(format!("the task beginning a transaction failed: {e}")))?
}

/// Whether a connection coming back to the pool may be handed out again: only outside any
/// transaction, by sqlx's count. A commit or rollback that failed leaves the count above
/// zero (the roll-back sea-orm queues on drop runs before the connection's next command, so
/// a connection it cleans up may be closed too: closing is always safe, reuse is not).
pub fn reusable(in_transaction: bool) -> bool {
    if in_transaction {
        tracing::warn!(
            "a pooled connection came back inside a transaction (a commit or rollback failed); \
             closing it"
        );
    }
    !in_transaction
}

/// The SQLite file the server opened, by identity (device and inode), not by name.
#[derive(Debug)]
pub struct DatabaseFile {
    path: PathBuf,
    identity: (u64, u64),
    /// Whether the loss has been logged (once per loss, again after a recovery).
    lost: AtomicBool,
}

/// Why the database file can no longer be trusted with a write.
#[derive(Debug, thiserror::Error)]
#[error("the SQLite database file {path} was deleted or replaced while the server ran")]
pub struct FileGone {
    path: PathBuf,
}

impl DatabaseFile {
    /// The file an SQLite `url` names, if it exists now (call it after migrating). `None`
    /// for other backends and in-memory databases.
    pub fn for_url(url: &str) -> Option<Self> {
        if !url.starts_with("sqlite:") || url.contains("memory") {
            return None;
        }
        let options = SqliteConnectOptions::from_str(url).ok()?;
        let path = options.get_filename().to_path_buf();
        let identity = identity(&path)?;
        Some(Self {
            path,
            identity,
            lost: AtomicBool::new(false),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `Ok` while the file at the path is still the one opened at start. One `stat`; the
    /// first failure after a success is logged as an error.
    pub fn check(&self) -> Result<(), FileGone> {
        if identity(&self.path) == Some(self.identity) {
            if self.lost.swap(false, Ordering::Relaxed) {
                tracing::warn!(path = %self.path.display(), "the SQLite database file is back");
            }
            return Ok(());
        }
        if !self.lost.swap(true, Ordering::Relaxed) {
            tracing::error!(path = %self.path.display(),
                "the SQLite database file was deleted or replaced: refusing writes and \
                 reporting unhealthy until it is back; restart the server to open the new file");
        }
        Err(FileGone {
            path: self.path.clone(),
        })
    }
}

#[cfg(unix)]
fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn identity(path: &Path) -> Option<(u64, u64)> {
    // No inode to compare: only a deleted file is noticed.
    std::fs::metadata(path).ok().map(|_| (0, 0))
}

/// A write probe runs at most this often; other `/health` calls in between reuse its result.
const WRITE_PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// The probe's row, big enough on SQLite (12 KiB) to need pages of its own, so that a file
/// that cannot grow fails it as a registration would.
const SQLITE_PROBE_BYTES: usize = 12 * 1024;

/// What `/health` asks of the database: it answers, its file is still ours, and a write
/// commits.
pub struct HealthCheck {
    db: DatabaseConnection,
    file: Option<Arc<DatabaseFile>>,
    /// When the write probe last ran and whether it committed; also makes the probe
    /// single-flight.
    last_probe: tokio::sync::Mutex<Option<(Instant, bool)>>,
}

impl HealthCheck {
    pub fn new(db: DatabaseConnection, file: Option<Arc<DatabaseFile>>) -> Self {
        Self {
            db,
            file,
            last_probe: tokio::sync::Mutex::new(None),
        }
    }

    /// Whether the database is up for writes. The caller bounds the time it may take.
    pub async fn database_up(&self) -> bool {
        if let Some(file) = &self.file
            && file.check().is_err()
        {
            return false;
        }
        if self.db.ping().await.is_err() {
            return false;
        }
        let mut last = self.last_probe.lock().await;
        if let Some((at, ok)) = *last
            && at.elapsed() < WRITE_PROBE_INTERVAL
        {
            return ok;
        }
        let ok = match write_probe(&self.db).await {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(%error, "health probe: a write does not commit");
                false
            }
        };
        *last = Some((Instant::now(), ok));
        ok
    }
}

/// Inserts a row into the migrations table and deletes it again, in one transaction that
/// commits: nothing changes, but the commit needs free space (pages on SQLite), a journal
/// write and the write lock, as a registration does.
async fn write_probe(db: &DatabaseConnection) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let version = match backend {
        DatabaseBackend::Sqlite => {
            format!("health-probe-{}", "x".repeat(SQLITE_PROBE_BYTES))
        }
        _ => format!("health-probe-{}", uuid::Uuid::new_v4().simple()),
    };
    let (insert, delete) = match backend {
        DatabaseBackend::Postgres => (
            "INSERT INTO seaql_migrations (version, applied_at) VALUES ($1, 0)",
            "DELETE FROM seaql_migrations WHERE version = $1",
        ),
        _ => (
            "INSERT INTO seaql_migrations (version, applied_at) VALUES (?, 0)",
            "DELETE FROM seaql_migrations WHERE version = ?",
        ),
    };
    let txn = begin_uncancellable(db, TransactionOptions::default()).await?;
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        insert,
        [version.clone().into()],
    ))
    .await?;
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        delete,
        [version.into()],
    ))
    .await?;
    txn.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_or_deleted_file_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.db");
        std::fs::write(&path, b"one").unwrap();
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let file = DatabaseFile::for_url(&url).unwrap();
        assert!(file.check().is_ok());
        // Same name, another file.
        let other = dir.path().join("other.db");
        std::fs::write(&other, b"two").unwrap();
        std::fs::rename(&other, &path).unwrap();
        assert!(file.check().is_err());
        std::fs::remove_file(&path).unwrap();
        assert!(file.check().is_err());
        assert!(DatabaseFile::for_url("sqlite::memory:").is_none());
        assert!(DatabaseFile::for_url("postgres://localhost/auth").is_none());
    }

    /// The defect itself, on one pooled connection: `SQLITE_FULL` rolls the transaction back
    /// behind sqlx's count. That connection must not be handed out again, and the next
    /// transaction must really commit (another connection sees its row).
    #[tokio::test]
    async fn a_connection_whose_transaction_failed_is_replaced_and_the_next_commit_is_real() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("full.db");
        let mut settings = crate::config::Settings::defaults().database;
        settings.url = secrecy::SecretString::from(format!("sqlite://{}?mode=rwc", path.display()));
        settings.max_connections = 1;
        // The file cannot grow past its first pages.
        let db = crate::db::connect_with(&settings, |o| o.pragma("max_page_count", "4"))
            .await
            .unwrap();
        db.execute_unprepared("CREATE TABLE t (b BLOB); CREATE TEMP TABLE marker (x)")
            .await
            .unwrap();
        let txn = db.begin().await.unwrap();
        let full = txn
            .execute_unprepared("INSERT INTO t VALUES (zeroblob(100000))")
            .await
            .unwrap_err();
        assert!(full.to_string().contains("full"), "{full}");
        // As the auth service does on an error: the transaction is dropped, not committed.
        drop(txn);

        // The one pooled connection was closed: a new one has no temporary table.
        let marker = db.execute_unprepared("SELECT * FROM temp.marker").await;
        assert!(marker.is_err(), "the failed connection was reused");
        let txn = db.begin().await.unwrap();
        txn.execute_unprepared("INSERT INTO t VALUES (x'01')")
            .await
            .unwrap();
        txn.commit().await.unwrap();
        let other = rusqlite::Connection::open(&path).unwrap();
        let rows: i64 = other
            .query_row("SELECT COUNT(*) FROM t", [], |row| row.get(0))
            .unwrap();
        assert_eq!(
            rows, 1,
            "the commit was acknowledged but is not in the file"
        );
    }
}
