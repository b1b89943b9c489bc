//! The guard's session read on SQLite, on the calling thread.
//!
//! sqlx runs every SQLite connection on a thread of its own, so each statement is a hand-off
//! from a tokio worker to that thread and back. For the one read every authenticated request
//! makes (is this session live, and whose is it), those hand-offs cost more than the read
//! itself (see `bench/FINDINGS.md`).
//!
//! [`SqliteReader`] keeps a few read-only connections of its own to the same database file
//! and runs that query inline. It reads exactly what the pool would: in WAL mode a reader
//! sees every transaction committed before it starts, by this process or any other, and
//! never waits for the writer. It never waits at all: its busy timeout is zero, and any
//! failure (busy, I/O, a value it cannot decode) is returned, so the caller falls back to
//! the pool and nothing is lost but time. The columns are written by sqlx, so the encodings
//! here are sqlx's: UUIDs as 16-byte blobs, instants as RFC 3339 text with `+00:00`, which
//! compare in time order as strings (the pool's query compares them the same way).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{LazyLock, Mutex};

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::config::DbConfig;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ValueRef};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row};
use sea_orm::IdenStatic;
use sea_orm::sqlx::sqlite::SqliteConnectOptions;
use uuid::Uuid;

use crate::auth::Account;
use crate::entity::{refresh_token, session};
use crate::store::refresh_tokens::FoundRefresh;
use crate::store::users::{ACCOUNT_COLUMNS, AccountRow, account};

/// Idle connections kept for reuse; one per thread that reads at the same moment is enough.
const MAX_IDLE: usize = 8;

/// Page cache of each reader connection, KiB.
const PAGE_CACHE_KIB: u32 = 16 * 1024;

/// The account of a live session: the same join, columns and conditions as the pool's
/// query in `Sessions::live_account`. Only the session id is a condition: given the user id
/// too, SQLite searched `idx_sessions_user_id` and walked every session of that user; the
/// caller compares the user instead.
pub(in crate::store) static LIVE_ACCOUNT: LazyLock<String> = LazyLock::new(|| {
    let columns: Vec<String> = ACCOUNT_COLUMNS
        .iter()
        .map(|c| format!("u.{}", c.as_str()))
        .collect();
    format!(
        "SELECT {} FROM sessions s INNER JOIN users u ON u.id = s.user_id \
         WHERE s.id = ?1 AND s.revoked_at IS NULL AND s.expires_at > ?2 LIMIT 1",
        columns.join(", ")
    )
});

/// Read-only connections to one SQLite database file.
pub struct SqliteReader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl SqliteReader {
    /// A reader for the database `url` names, if it is an SQLite file that exists now (call
    /// it after migrating). `None` for other backends and for in-memory databases, which
    /// other connections cannot see.
    pub fn for_url(url: &str) -> Option<Self> {
        if !url.starts_with("sqlite:") || url.contains("memory") {
            return None;
        }
        let options = SqliteConnectOptions::from_str(url).ok()?;
        let path = options.get_filename();
        if !path.is_file() {
            return None;
        }
        let reader = Self {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
        };
        // Refuse now, not on every request, a file this process cannot open.
        let conn = reader.open().ok()?;
        reader.give_back(conn);
        Some(reader)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)?;
        // rusqlite waits 5 s on a busy database by default; this runs on an async worker,
        // so it must never wait: a busy read falls back to the pool instead.
        conn.busy_timeout(std::time::Duration::ZERO)?;
        // SQLite's default page cache (2 MiB) no longer held the lookups' pages with a
        // million accounts, and every miss is a `pread` (see `bench/FINDINGS.md`).
        // Allocated only as pages are read; about one connection per core is in use.
        // (Mapping the file instead did not help.)
        conn.pragma_update(None, "cache_size", -(PAGE_CACHE_KIB as i64))?;
        // Plans must not depend on the values bound: with `ANALYZE` statistics in the file
        // (an operator's `ANALYZE` or `PRAGMA optimize`), SQLite's STAT4 estimates from a
        // bound value mark the statement, and every new session id re-prepared it (see
        // `bench/FINDINGS.md`). Our lookups are by primary key; the value cannot improve
        // their plan.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        Ok(conn)
    }

    fn take(&self) -> rusqlite::Result<Connection> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match idle {
            Some(conn) => Ok(conn),
            None => self.open(),
        }
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    /// The account of session `session` if it is live at `at`; `None` when it is not.
    pub fn live_account(
        &self,
        session: Uuid,
        at: DateTime<Utc>,
    ) -> rusqlite::Result<Option<Account>> {
        let conn = self.take()?;
        let found = Self::query(&conn, session, at);
        // A connection that failed is dropped rather than reused.
        if found.is_ok() {
            self.give_back(conn);
        }
        found
    }

    fn query(
        conn: &Connection,
        session: Uuid,
        at: DateTime<Utc>,
    ) -> rusqlite::Result<Option<Account>> {
        let mut statement = conn.prepare_cached(&LIVE_ACCOUNT)?;
        let at = sqlx_instant(at);
        let row = statement
            .query_row(
                (session.as_bytes().as_slice(), at),
                AccountRow::from_sqlx_row,
            )
            .optional()?;
        Ok(row.map(account))
    }
}

impl SqliteReader {
    /// The refresh token stored under `token_hash`, its session and the session's
    /// account, whatever their state: the pool's `RefreshTokens::find_with_session`,
    /// inline.
    pub fn refresh_with_session(&self, token_hash: &str) -> rusqlite::Result<Option<FoundRefresh>> {
        let conn = self.take()?;
        let found = Self::refresh_query(&conn, token_hash);
        if found.is_ok() {
            self.give_back(conn);
        }
        found
    }

    /// The read of [`refresh_with_session`](Self::refresh_with_session) on `conn` (also
    /// the group writer's, inside its transaction: `rotations::group_commit`).
    pub(in crate::store) fn refresh_query(
        conn: &Connection,
        token_hash: &str,
    ) -> rusqlite::Result<Option<FoundRefresh>> {
        let mut statement = conn.prepare_cached(&REFRESH_WITH_SESSION)?;
        statement
            .query_row([token_hash], |row| {
                // The account's columns first, so that `AccountRow` decodes them as is.
                let at = |i: usize| ACCOUNT_COLUMNS.len() + i;
                let token = refresh_token::Model {
                    id: column(row, at(0))?,
                    session_id: column(row, at(1))?,
                    token_hash: column(row, at(2))?,
                    created_at: column(row, at(3))?,
                    expires_at: column(row, at(4))?,
                    spent_at: column(row, at(5))?,
                    generation: column(row, at(6))?,
                    rotated_at: column(row, at(7))?,
                };
                let session = session::Model {
                    id: column(row, at(8))?,
                    user_id: column(row, at(9))?,
                    created_at: column(row, at(10))?,
                    expires_at: column(row, at(11))?,
                    revoked_at: column(row, at(12))?,
                    last_used_at: column(row, at(13))?,
                    created_ip: column(row, at(14))?,
                    created_user_agent: column(row, at(15))?,
                    last_ip: column(row, at(16))?,
                    last_user_agent: column(row, at(17))?,
                    amr: column(row, at(18))?,
                };
                Ok(FoundRefresh {
                    token,
                    session,
                    account: account(AccountRow::from_sqlx_row(row)?),
                })
            })
            .optional()
    }
}

/// The refresh token of a hash, its session and the session's account: the account's
/// [`ACCOUNT_COLUMNS`], then every column of the token and of the session in the models'
/// field order (the pool's `find_also_related` reads the same rows).
static REFRESH_WITH_SESSION: LazyLock<String> = LazyLock::new(|| {
    let columns: Vec<String> = ACCOUNT_COLUMNS
        .iter()
        .map(|c| format!("u.{}", c.as_str()))
        .collect();
    format!(
        "SELECT {}, t.id, t.session_id, t.token_hash, t.created_at, t.expires_at, \
         t.spent_at, t.generation, t.rotated_at, s.id, s.user_id, s.created_at, s.expires_at, s.revoked_at, \
         s.last_used_at, s.created_ip, s.created_user_agent, s.last_ip, s.last_user_agent, \
         s.amr \
         FROM refresh_tokens t INNER JOIN sessions s ON s.id = t.session_id \
         INNER JOIN users u ON u.id = s.user_id \
         WHERE t.token_hash = ?1 LIMIT 1",
        columns.join(", ")
    )
});

/// Column `i` of a row of sqlx-written values.
fn column<T: SqlxValue>(row: &Row<'_>, i: usize) -> rusqlite::Result<T> {
    row.get::<_, Sqlx<T>>(i).map(|value| value.0)
}

#[cfg(test)]
impl SqliteReader {
    /// How often the guard's statement on an idle connection has been prepared again.
    pub(in crate::store) fn reprepares(&self) -> i32 {
        let conn = self.take().unwrap();
        let count = conn
            .prepare_cached(&LIVE_ACCOUNT)
            .unwrap()
            .get_status(rusqlite::StatementStatus::RePrepare);
        self.give_back(conn);
        count
    }
}

/// An instant as sqlx writes a `DateTime<Utc>` into SQLite (RFC 3339, `+00:00`), so that
/// values written or compared here sort and decode as the pool's do.
pub(in crate::store) fn sqlx_instant(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// A value as sqlx writes it into SQLite.
pub(in crate::store) trait SqlxValue: Sized {
    fn decode(value: ValueRef<'_>) -> FromSqlResult<Self>;
}

impl SqlxValue for Uuid {
    fn decode(value: ValueRef<'_>) -> FromSqlResult<Self> {
        Uuid::from_slice(value.as_blob()?).map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

impl SqlxValue for String {
    fn decode(value: ValueRef<'_>) -> FromSqlResult<Self> {
        String::column_result(value)
    }
}

impl SqlxValue for i64 {
    fn decode(value: ValueRef<'_>) -> FromSqlResult<Self> {
        value.as_i64()
    }
}

impl SqlxValue for DateTime<Utc> {
    fn decode(value: ValueRef<'_>) -> FromSqlResult<Self> {
        DateTime::parse_from_rfc3339(value.as_str()?)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

impl<T: SqlxValue> SqlxValue for Option<T> {
    fn decode(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value {
            ValueRef::Null => Ok(None),
            value => T::decode(value).map(Some),
        }
    }
}

/// rusqlite's view of a [`SqlxValue`].
pub(in crate::store) struct Sqlx<T>(pub(in crate::store) T);

impl<T: SqlxValue> FromSql for Sqlx<T> {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        T::decode(value).map(Sqlx)
    }
}

/// A row of sqlx-written values, decoded column by column into a tuple: [`AccountRow`]
/// decodes by its types, so a new column needs no code here.
pub(in crate::store) trait FromSqlxRow: Sized {
    fn from_sqlx_row(row: &Row<'_>) -> rusqlite::Result<Self>;
}

macro_rules! tuple_from_sqlx_row {
    ($($t:ident $i:tt),+) => {
        impl<$($t: SqlxValue),+> FromSqlxRow for ($($t,)+) {
            fn from_sqlx_row(row: &Row<'_>) -> rusqlite::Result<Self> {
                Ok(($(row.get::<_, Sqlx<$t>>($i)?.0,)+))
            }
        }
    };
}

tuple_from_sqlx_row!(A 0, B 1, C 2, D 3, E 4);
tuple_from_sqlx_row!(A 0, B 1, C 2, D 3, E 4, F 5);
tuple_from_sqlx_row!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_from_sqlx_row!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
