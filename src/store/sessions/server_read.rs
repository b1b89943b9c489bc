//! The guard's session read on PostgreSQL and MySQL/MariaDB: through sqlx directly, and
//! in batches; and the refresh's read of a token with its session and account, through
//! sqlx directly.
//!
//! Every authenticated request asks one question: is this session live, and whose is it.
//! Through sea-orm, each ask built the statement with sea-query, turned its values into
//! sea-orm's and then sqlx's, and decoded the row through sea-orm's generic result. Here the
//! statement is a fixed string, prepared once per connection by sqlx's statement cache,
//! bound and decoded as sqlx's own types, on the same pool (so the same limits, timeouts
//! and connection hooks hold).
//!
//! **Batches.** The reads of the requests waiting at the same moment share one statement
//! (`id = ANY($1)`, `id IN (…)`; see [`crate::store::batch`]); a lone read on PostgreSQL is
//! `id = $1`. Each ask's expiry is
//! compared with its own instant, so an answer is the one its own read would have given
//! at the moment the batch ran.

use std::sync::{Arc, LazyLock};

use chrono::{DateTime, Utc};
use sea_orm::sqlx::{AssertSqlSafe, ColumnIndex, Decode, FromRow, MySql, Postgres, Row, Type};
use sea_orm::{DatabaseBackend, DatabaseConnection, DbErr, IdenStatic, QueryTrait, RuntimeErr};
use uuid::Uuid;

use crate::auth::Account;
use crate::entity::{refresh_token, session};
use crate::store::batch::{Batcher, MAX_BATCH, slots_of};
use crate::store::refresh_tokens::{FoundRefresh, find_with_session};
use crate::store::users::{ACCOUNT_COLUMNS, AccountRow, account};
use crate::store::warm::{Lent, Warm};

/// A session row as the batch reads it: the account's columns ([`AccountRow`], first, so
/// that its own decoding reads them), then the session's id and expiry.
#[derive(Clone)]
struct BatchRow {
    account: AccountRow,
    sid: Uuid,
    expires_at: DateTime<Utc>,
}

/// Where [`BatchRow`]'s session columns start.
const SESSION_COLUMNS_AT: usize = ACCOUNT_COLUMNS.len();

impl<'r, R> FromRow<'r, R> for BatchRow
where
    R: Row,
    AccountRow: FromRow<'r, R>,
    usize: ColumnIndex<R>,
    Uuid: Decode<'r, R::Database> + Type<R::Database>,
    DateTime<Utc>: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sea_orm::sqlx::Error> {
        Ok(Self {
            account: AccountRow::from_row(row)?,
            sid: row.try_get(SESSION_COLUMNS_AT)?,
            expires_at: row.try_get(SESSION_COLUMNS_AT + 1)?,
        })
    }
}

/// The pool the guard reads from directly, with the connections kept between its uses
/// (see [`crate::store::warm`]).
#[derive(Clone)]
enum Pool {
    Postgres(Arc<Warm<Postgres>>),
    MySql(Arc<Warm<MySql>>),
}

impl Pool {
    /// A connection, kept or the pool's.
    async fn take(&self) -> Result<Connection, DbErr> {
        match self {
            Self::Postgres(warm) => warm.take().await.map(Connection::Postgres),
            Self::MySql(warm) => warm.take().await.map(Connection::MySql),
        }
        .map_err(sqlx_error)
    }

    /// Gives back `conn` after a use that ended cleanly (see [`Warm::put`]).
    fn put(&self, conn: Connection) {
        match (self, conn) {
            (Self::Postgres(warm), Connection::Postgres(lent)) => warm.put(lent),
            (Self::MySql(warm), Connection::MySql(lent)) => warm.put(lent),
            // Never made: a pool lends only its own kind. Dropped, it goes back to its pool.
            _ => {}
        }
    }
}

/// The guard's direct read: the pool, and the batching task when one runs.
pub(in crate::store) struct ServerRead {
    pool: Pool,
    batches: Option<Batcher<Uuid, BatchRow>>,
}

impl ServerRead {
    /// The direct read for `db`'s pool; `None` on SQLite (which has the inline read).
    /// Batches when called inside a tokio runtime (always, in the server); otherwise each
    /// ask is its own read.
    pub(in crate::store) fn of(db: &DatabaseConnection) -> Option<Self> {
        let pool = match db.get_database_backend() {
            DatabaseBackend::Postgres => {
                Pool::Postgres(Warm::new(db.get_postgres_connection_pool().clone()))
            }
            DatabaseBackend::MySql => {
                Pool::MySql(Warm::new(db.get_mysql_connection_pool().clone()))
            }
            _ => return None,
        };
        let max = match &pool {
            Pool::Postgres(w) => w.pool().options().get_max_connections(),
            Pool::MySql(w) => w.pool().options().get_max_connections(),
        };
        let batched = pool.clone();
        let batches = Batcher::start("session", slots_of(max), move |sids: Vec<Uuid>| {
            let pool = batched.clone();
            async move {
                let rows = read(&pool, &sids).await?;
                Ok(rows.into_iter().map(|row| (row.sid, row)).collect())
            }
        });
        Some(Self { pool, batches })
    }

    /// The account of session `sid` if it is live at `at`: the same join, columns and
    /// conditions as the pool's query in `Sessions::live_account`.
    pub(in crate::store) async fn live_account(
        &self,
        sid: Uuid,
        at: DateTime<Utc>,
    ) -> Result<Option<Account>, DbErr> {
        let row = match &self.batches {
            Some(batches) => batches.ask(sid).await?,
            None => read(&self.pool, &[sid]).await?.into_iter().next(),
        };
        Ok(row.and_then(|row| live(row, sid, at)))
    }
}

impl ServerRead {
    /// The refresh token stored under `token_hash`, its session and the session's account,
    /// whatever their state: the pool's `RefreshTokens::find_with_session`, its very
    /// statement text, bound and decoded by sqlx directly (a fixed statement, prepared once
    /// per connection, instead of sea-query's building and sea-orm's decoding on every
    /// refresh). Not batched: see `bench/FINDINGS.md`, issue 17 part 5.
    pub(in crate::store) async fn refresh_with_session(
        &self,
        token_hash: &str,
    ) -> Result<Option<FoundRefresh>, DbErr> {
        let pool = self.pool.clone();
        let mut conn = pool.take().await?;
        let found = conn.refresh_with_session(token_hash).await?;
        pool.put(conn);
        Ok(found)
    }

    /// One connection, kept or the pool's, held for the steps of one refresh, which then
    /// pay one acquire instead of one per step; and the way to give it back after a use
    /// that ended cleanly, which saves the ping of a release (see [`crate::store::warm`]).
    /// Dropped instead, it goes back to the pool, pinged.
    pub(in crate::store) fn connection(
        &self,
    ) -> (
        impl Future<Output = Result<Connection, DbErr>> + Send + 'static,
        impl FnOnce(Connection) + Send + 'static,
    ) {
        let pool = self.pool.clone();
        let home = self.pool.clone();
        (async move { pool.take().await }, move |conn| home.put(conn))
    }
}

/// A connection of [`ServerRead`]'s pool (the sea-orm pool's own), lent by its kept
/// connections ([`crate::store::warm`]); back to the pool when dropped.
pub(in crate::store) enum Connection {
    Postgres(Lent<Postgres>),
    MySql(Lent<MySql>),
}

impl Connection {
    /// As [`ServerRead::refresh_with_session`], on this connection.
    pub(in crate::store) async fn refresh_with_session(
        &mut self,
        token_hash: &str,
    ) -> Result<Option<FoundRefresh>, DbErr> {
        let row = match self {
            Self::Postgres(conn) => {
                sea_orm::sqlx::query_as::<_, RefreshRow>(AssertSqlSafe(REFRESH_POSTGRES.as_str()))
                    .bind(token_hash)
                    .bind(1_i64)
                    .fetch_optional(&mut *conn.conn)
                    .await
            }
            Self::MySql(conn) => {
                sea_orm::sqlx::query_as::<_, RefreshRow>(AssertSqlSafe(REFRESH_MYSQL.as_str()))
                    .bind(token_hash)
                    .bind(1_u64)
                    .fetch_optional(&mut *conn.conn)
                    .await
            }
        };
        row.map(|row| row.map(|RefreshRow(found)| found))
            .map_err(sqlx_error)
    }
}

/// An error of sqlx used directly, as sea-orm reports its own.
pub(in crate::store) fn sqlx_error(e: sea_orm::sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(e.into()))
}

/// The row of [`ServerRead::refresh_with_session`], in its statement's order: the token's
/// columns, the session's, then the account's ([`ACCOUNT_COLUMNS`]).
struct RefreshRow(FoundRefresh);

impl<'r, R> FromRow<'r, R> for RefreshRow
where
    R: Row,
    usize: ColumnIndex<R>,
    Uuid: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    DateTime<Utc>: Decode<'r, R::Database> + Type<R::Database>,
    Option<DateTime<Utc>>: Decode<'r, R::Database> + Type<R::Database>,
    Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sea_orm::sqlx::Error> {
        let token = refresh_token::Model {
            id: row.try_get(0)?,
            session_id: row.try_get(1)?,
            token_hash: row.try_get(2)?,
            created_at: row.try_get(3)?,
            expires_at: row.try_get(4)?,
            spent_at: row.try_get(5)?,
            generation: row.try_get(6)?,
            rotated_at: row.try_get(7)?,
        };
        let session = session::Model {
            id: row.try_get(8)?,
            user_id: row.try_get(9)?,
            created_at: row.try_get(10)?,
            expires_at: row.try_get(11)?,
            revoked_at: row.try_get(12)?,
            last_used_at: row.try_get(13)?,
            created_ip: row.try_get(14)?,
            created_user_agent: row.try_get(15)?,
            last_ip: row.try_get(16)?,
            last_user_agent: row.try_get(17)?,
            amr: row.try_get(18)?,
        };
        let at = |i: usize| REFRESH_ACCOUNT_AT + i;
        let columns: AccountRow = (
            row.try_get(at(0))?,
            row.try_get(at(1))?,
            row.try_get(at(2))?,
            row.try_get(at(3))?,
            row.try_get(at(4))?,
            row.try_get(at(5))?,
        );
        Ok(Self(FoundRefresh {
            token,
            session,
            account: account(columns),
        }))
    }
}

/// Where [`RefreshRow`]'s account columns start: after the token's 8 and the session's 11.
const REFRESH_ACCOUNT_AT: usize = 19;

/// The pool's refresh read as text, for `backend`, with the hash left to bind (`$1`/`?`)
/// and the limit (`$2`/`?`, always 1).
fn refresh_sql(backend: DatabaseBackend) -> String {
    find_with_session(String::new()).build(backend).sql
}

static REFRESH_POSTGRES: LazyLock<String> =
    LazyLock::new(|| refresh_sql(DatabaseBackend::Postgres));

static REFRESH_MYSQL: LazyLock<String> = LazyLock::new(|| refresh_sql(DatabaseBackend::MySql));

/// The account of `row` if it is session `sid`'s and the session is live at `at`.
fn live(row: BatchRow, sid: Uuid, at: DateTime<Utc>) -> Option<Account> {
    (row.sid == sid && row.expires_at > at).then(|| account(row.account))
}

/// The rows of the not-revoked sessions among `sids` (distinct, at most [`MAX_BATCH`]), on
/// a kept connection (given back only if the read ended cleanly).
async fn read(pool: &Pool, sids: &[Uuid]) -> Result<Vec<BatchRow>, DbErr> {
    let mut conn = pool.take().await?;
    let rows = match &mut conn {
        // One session by `id = $1`: with `= ANY($1)` PostgreSQL answered a lone `me` in
        // 0.12 ms instead of 0.04 (a bitmap scan over a one-element array; FINDINGS).
        Connection::Postgres(lent) if sids.len() == 1 => {
            sea_orm::sqlx::query_as::<_, BatchRow>(AssertSqlSafe(POSTGRES_ONE.as_str()))
                .bind(sids[0])
                .fetch_all(&mut *lent.conn)
                .await
        }
        Connection::Postgres(lent) => {
            sea_orm::sqlx::query_as::<_, BatchRow>(AssertSqlSafe(POSTGRES.as_str()))
                .bind(sids)
                .fetch_all(&mut *lent.conn)
                .await
        }
        Connection::MySql(lent) => {
            // `IN` takes one placeholder per value: the list is padded (with its last id) to
            // the next power of two, so a connection prepares at most seven statements.
            let (width, sql) = MYSQL
                .iter()
                .find(|(width, _)| *width >= sids.len())
                .expect("a batch holds at most MAX_BATCH sessions");
            let mut query = sea_orm::sqlx::query_as::<_, BatchRow>(AssertSqlSafe(sql.as_str()));
            for i in 0..*width {
                query = query.bind(sids[i.min(sids.len() - 1)]);
            }
            query.fetch_all(&mut *lent.conn).await
        }
    };
    let rows = rows.map_err(sqlx_error)?;
    pool.put(conn);
    Ok(rows)
}

/// The batch's statement with identifiers quoted by `quote` and the sessions' ids matched
/// by `ids`: a fixed text (names of our own, values only ever bound), hence `AssertSqlSafe`.
fn batch_sql(quote: char, ids: &str) -> String {
    let q = |name: &str| format!("{quote}{name}{quote}");
    let columns: Vec<String> = ACCOUNT_COLUMNS
        .iter()
        .map(|c| format!("u.{}", q(c.as_str())))
        .collect();
    format!(
        "SELECT {}, s.{}, s.{} FROM {} s INNER JOIN {} u ON u.{} = s.{} \
         WHERE s.{} {ids} AND s.{} IS NULL",
        columns.join(", "),
        q("id"),
        q("expires_at"),
        q("sessions"),
        q("users"),
        q("id"),
        q("user_id"),
        q("id"),
        q("revoked_at"),
    )
}

static POSTGRES: LazyLock<String> = LazyLock::new(|| batch_sql('"', "= ANY($1)"));

static POSTGRES_ONE: LazyLock<String> = LazyLock::new(|| batch_sql('"', "= $1"));

/// The MySQL statements by width: 1, 2, 4, … [`MAX_BATCH`] placeholders.
static MYSQL: LazyLock<Vec<(usize, String)>> = LazyLock::new(|| {
    std::iter::successors(Some(1_usize), |w| (*w < MAX_BATCH).then_some(w * 2))
        .map(|width| {
            let marks = vec!["?"; width].join(", ");
            (width, batch_sql('`', &format!("IN ({marks})")))
        })
        .collect()
});

#[cfg(test)]
mod tests {
    use sea_orm::{DatabaseBackend, IdenStatic, Iterable};

    use super::{REFRESH_ACCOUNT_AT, refresh_sql};
    use crate::entity::{refresh_token, session};
    use crate::store::users::ACCOUNT_COLUMNS;

    /// `RefreshRow` decodes by position: the token's columns in its model's order, the
    /// session's, then the account's from `REFRESH_ACCOUNT_AT`. The statement must select
    /// exactly those, in that order, on both backends.
    #[test]
    fn the_refresh_statement_selects_what_refresh_row_decodes_in_its_order() {
        let expected: Vec<String> = refresh_token::Column::iter()
            .map(|c| format!("A_{}", c.as_str()))
            .chain(session::Column::iter().map(|c| format!("B_{}", c.as_str())))
            .chain(ACCOUNT_COLUMNS.iter().map(|c| format!("C_{}", c.as_str())))
            .collect();
        assert_eq!(
            REFRESH_ACCOUNT_AT,
            refresh_token::Column::iter().count() + session::Column::iter().count()
        );
        for (backend, quote) in [
            (DatabaseBackend::Postgres, '"'),
            (DatabaseBackend::MySql, '`'),
        ] {
            let sql = refresh_sql(backend);
            let aliases: Vec<String> = sql
                .split(" AS ")
                .skip(1)
                .map(|rest| rest.split(quote).nth(1).unwrap().to_owned())
                .collect();
            assert_eq!(aliases, expected, "{backend:?}: {sql}");
        }
    }
}
