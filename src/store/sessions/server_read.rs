//! The guard's session read on PostgreSQL and MySQL/MariaDB: through sqlx directly, and
//! in batches.
//!
//! Every authenticated request asks one question: is this session live, and whose is it.
//! Through sea-orm, each ask built the statement with sea-query, turned its values into
//! sea-orm's and then sqlx's, and decoded the row through sea-orm's generic result. Here the
//! statement is a fixed string, prepared once per connection by sqlx's statement cache,
//! bound and decoded as sqlx's own types, on the same pool (so the same limits, timeouts
//! and connection hooks hold).
//!
//! **Batches.** One read per request made the database's round trip, and the pool's
//! acquire and its ping on every release, the larger part of a `me` (see
//! `bench/FINDINGS.md`, issue 17 part 5). A task of its own answers the asks: it takes
//! one, then every other ask waiting at that moment (up to [`MAX_BATCH`]), and reads all
//! their sessions in one statement (`id = ANY($1)`, `id IN (…)`). At most
//! [`in_flight`] batches run at once; asks that arrive meanwhile wait for the next one,
//! so the batches grow with the load and not otherwise: no timer waits for company, and a
//! lone ask is read at once, alone. Each ask's expiry is compared with its own instant,
//! so an answer is the one its own read would have given at the moment the batch ran.

use std::sync::{Arc, LazyLock};

use chrono::{DateTime, Utc};
use sea_orm::sqlx::{AssertSqlSafe, MySqlPool, PgPool};
use sea_orm::{DatabaseBackend, DatabaseConnection, DbErr, IdenStatic, RuntimeErr};
use tokio::sync::{Semaphore, mpsc, oneshot};
use uuid::Uuid;

use crate::auth::Account;
use crate::store::users::{ACCOUNT_COLUMNS, account};

/// The most sessions one batch reads.
pub(in crate::store) const MAX_BATCH: usize = 64;

/// A session row as the batch reads it: its id and expiry, then the account's columns.
type BatchRow = (
    Uuid,
    DateTime<Utc>,
    Uuid,
    String,
    Option<String>,
    DateTime<Utc>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

/// What a batch hands back to one ask.
type Answer = Result<Option<Account>, Arc<sea_orm::sqlx::Error>>;

/// One request's question, waiting for a batch.
struct Ask {
    sid: Uuid,
    at: DateTime<Utc>,
    reply: oneshot::Sender<Answer>,
}

/// The pool the guard reads from directly.
#[derive(Clone)]
enum Pool {
    Postgres(PgPool),
    MySql(MySqlPool),
}

/// The guard's direct read: the pool, and the batching task's queue when one runs.
pub(in crate::store) struct ServerRead {
    pool: Pool,
    asks: Option<mpsc::UnboundedSender<Ask>>,
}

impl ServerRead {
    /// The direct read for `db`'s pool; `None` on SQLite (which has the inline read).
    /// Batches when called inside a tokio runtime (always, in the server); otherwise each
    /// ask is its own read.
    pub(in crate::store) fn of(db: &DatabaseConnection) -> Option<Self> {
        let pool = match db.get_database_backend() {
            DatabaseBackend::Postgres => Pool::Postgres(db.get_postgres_connection_pool().clone()),
            DatabaseBackend::MySql => Pool::MySql(db.get_mysql_connection_pool().clone()),
            _ => return None,
        };
        let asks = tokio::runtime::Handle::try_current().ok().map(|runtime| {
            let (sender, receiver) = mpsc::unbounded_channel();
            runtime.spawn(batches(pool.clone(), receiver));
            sender
        });
        Some(Self { pool, asks })
    }

    /// The account of session `sid` if it is live at `at`: the same join, columns and
    /// conditions as the pool's query in `Sessions::live_account`.
    pub(in crate::store) async fn live_account(
        &self,
        sid: Uuid,
        at: DateTime<Utc>,
    ) -> Result<Option<Account>, DbErr> {
        let answer = match &self.asks {
            Some(asks) => {
                let (reply, answer) = oneshot::channel();
                match asks.send(Ask { sid, at, reply }) {
                    // The task answers every ask it takes, unless the runtime is going away.
                    Ok(()) => answer.await.unwrap_or_else(|_| Err(Arc::new(stopped()))),
                    Err(_) => Err(Arc::new(stopped())),
                }
            }
            None => read(&self.pool, &[sid])
                .await
                .map_err(Arc::new)
                .map(|rows| rows.into_iter().find_map(|row| live(row, sid, at))),
        };
        answer.map_err(|e| DbErr::Query(RuntimeErr::Internal(e.to_string())))
    }
}

/// The error of an ask whose batching task is gone (the runtime is shutting down).
fn stopped() -> sea_orm::sqlx::Error {
    sea_orm::sqlx::Error::PoolClosed
}

/// The account of `row` if it is session `sid`'s and the session is live at `at`.
fn live(row: BatchRow, sid: Uuid, at: DateTime<Utc>) -> Option<Account> {
    let (id, expires_at, user, email, username, created_at, updated_at, verified_at) = row;
    (id == sid && expires_at > at)
        .then(|| account((user, email, username, created_at, updated_at, verified_at)))
}

/// How many batches may read at once: a quarter of the pool, at least one, at most four,
/// so that the guard never holds the connections the writes need.
fn in_flight(pool: &Pool) -> usize {
    let max = match pool {
        Pool::Postgres(p) => p.options().get_max_connections(),
        Pool::MySql(p) => p.options().get_max_connections(),
    };
    usize::try_from(max / 4).unwrap_or(1).clamp(1, 4)
}

/// The batching task: runs until every sender is gone (the store dropped).
async fn batches(pool: Pool, mut asks: mpsc::UnboundedReceiver<Ask>) {
    let slots = Arc::new(Semaphore::new(in_flight(&pool)));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = asks.recv().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match asks.try_recv() {
                Ok(ask) => batch.push(ask),
                Err(_) => break,
            }
        }
        // Through the facade each time: a recorder installed after this task started (as
        // in a test process) still gets every batch.
        metrics::histogram!(crate::metrics::GUARD_BATCH_SIZE).record(batch.len() as f64);
        let pool = pool.clone();
        tokio::spawn(async move {
            answer(&pool, batch).await;
            drop(slot);
        });
    }
}

/// Reads the sessions of `batch` in one statement and answers each ask.
async fn answer(pool: &Pool, batch: Vec<Ask>) {
    let mut sids: Vec<Uuid> = batch.iter().map(|ask| ask.sid).collect();
    sids.sort_unstable();
    sids.dedup();
    match read(pool, &sids).await {
        Ok(rows) => {
            for ask in batch {
                let found = rows
                    .iter()
                    .find(|row| row.0 == ask.sid)
                    .and_then(|row| live(row.clone(), ask.sid, ask.at));
                // An ask whose request is gone has no one to answer.
                let _ = ask.reply.send(Ok(found));
            }
        }
        Err(error) => {
            let error = Arc::new(error);
            for ask in batch {
                let _ = ask.reply.send(Err(error.clone()));
            }
        }
    }
}

/// The rows of the not-revoked sessions among `sids` (distinct, at most [`MAX_BATCH`]).
async fn read(pool: &Pool, sids: &[Uuid]) -> Result<Vec<BatchRow>, sea_orm::sqlx::Error> {
    match pool {
        Pool::Postgres(pool) => {
            sea_orm::sqlx::query_as::<_, BatchRow>(AssertSqlSafe(POSTGRES.as_str()))
                .bind(sids)
                .fetch_all(pool)
                .await
        }
        Pool::MySql(pool) => {
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
            query.fetch_all(pool).await
        }
    }
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
        "SELECT s.{}, s.{}, {} FROM {} s INNER JOIN {} u ON u.{} = s.{} \
         WHERE s.{} {ids} AND s.{} IS NULL",
        q("id"),
        q("expires_at"),
        columns.join(", "),
        q("sessions"),
        q("users"),
        q("id"),
        q("user_id"),
        q("id"),
        q("revoked_at"),
    )
}

static POSTGRES: LazyLock<String> = LazyLock::new(|| batch_sql('"', "= ANY($1)"));

/// The MySQL statements by width: 1, 2, 4, … [`MAX_BATCH`] placeholders.
static MYSQL: LazyLock<Vec<(usize, String)>> = LazyLock::new(|| {
    std::iter::successors(Some(1_usize), |w| (*w < MAX_BATCH).then_some(w * 2))
        .map(|width| {
            let marks = vec!["?"; width].join(", ");
            (width, batch_sql('`', &format!("IN ({marks})")))
        })
        .collect()
});
