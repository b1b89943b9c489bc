//! A refresh's storage on PostgreSQL and MySQL/MariaDB: the read of the token and the
//! rotation its judgement asks for, on one pooled connection, through sqlx directly.
//!
//! Through the pool, the two steps took a connection each, and each connection's release
//! cost a round trip: sqlx pings every connection it takes back, unconditionally. On one
//! connection, a refresh pays one acquire and one ping (`bench/FINDINGS.md`, issue 17
//! part 8), and none when the connection is one kept between uses (`crate::store::warm`,
//! parts 12 and 13). The statements are fixed texts, prepared once per connection by sqlx's cache,
//! as the guard's and the refresh read's already were (`sessions::server_read`).
//!
//! Both steps run in a task of their own, so a request dropped meanwhile (a client that
//! hung up) cannot stop them half way: on MySQL, a `BEGIN` cancelled in flight would leave
//! the connection inside a transaction sqlx never counted (see `crate::storage`).

use sea_orm::DbErr;
use sea_orm::sqlx::{self, AssertSqlSafe, Connection as _};

use super::{Decide, Refreshed, Rotated, Rotation, Step};
use crate::store::refresh_tokens::new_id;
use crate::store::sessions::{Connection, ServerRead, sqlx_error};

impl ServerRead {
    /// Reads the token under `token_hash` with its session and account, then commits the
    /// rotation `decide` asks for, on one connection. `None` when no token has that hash.
    pub(in crate::store) async fn find_and_rotate(
        &self,
        token_hash: String,
        decide: Decide,
    ) -> Result<Option<Refreshed>, DbErr> {
        let (connection, give_back) = self.connection();
        let steps = async move {
            let mut conn = connection.await?;
            let Some(found) = conn.refresh_with_session(&token_hash).await? else {
                give_back(conn);
                return Ok(None);
            };
            let rotated = match decide(&found) {
                Some(rotation) => Some(conn.rotate(&rotation).await?),
                None => None,
            };
            // Only after both steps ended cleanly: an error above drops the connection
            // into the pool, whose ping on release tests it.
            give_back(conn);
            Ok(Some(Refreshed { found, rotated }))
        };
        // Boxed first: the future holds every statement's state (kilobytes), which `spawn`
        // would otherwise copy more than once on its way into the task (2 % of the server's
        // CPU under a MariaDB refresh load, `bench/FINDINGS.md` issue 17 part 13).
        tokio::spawn(Box::pin(steps))
            .await
            .map_err(|e| DbErr::Custom(format!("the task of a refresh's storage failed: {e}")))?
    }
}

impl Connection {
    /// Rotates as `r` says, committed before it returns: on PostgreSQL one statement
    /// ([`ADVANCE_POSTGRES`], [`UPGRADE_POSTGRES`]), on MySQL one transaction of two
    /// statements (three for a token issued before chains).
    pub(in crate::store) async fn rotate(&mut self, r: &Rotation) -> Result<Rotated, DbErr> {
        match self {
            Self::Postgres(conn) => {
                let sql = match r.step {
                    Step::Advance { .. } => ADVANCE_POSTGRES,
                    Step::Upgrade { .. } => UPGRADE_POSTGRES,
                };
                let query = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(r.at)
                    .bind(r.token)
                    .bind(r.expires_at)
                    .bind(r.client.ip_text())
                    .bind(r.client.user_agent.as_deref())
                    .bind(r.session);
                let query = match &r.step {
                    Step::Advance { from } => query.bind(*from),
                    Step::Upgrade { chain_hash } => query.bind(chain_hash.as_str()).bind(new_id()),
                };
                let (spent, done): (i64, i64) =
                    query.fetch_one(&mut *conn.conn).await.map_err(sqlx_error)?;
                Ok(match (spent, done) {
                    (0, _) => Rotated::AlreadySpent,
                    (_, 0) => Rotated::SessionGone,
                    _ => Rotated::Done,
                })
            }
            Self::MySql(conn) => rotate_mysql(&mut conn.conn, r).await.map_err(sqlx_error),
        }
    }
}

/// The rotation as one READ COMMITTED transaction (the isolation every MySQL connection
/// of `crate::db::connect` runs at): spend the token, refresh the session, store the
/// successor; rolled back at the first step that matches no row.
async fn rotate_mysql(
    conn: &mut sqlx::MySqlConnection,
    r: &Rotation,
) -> Result<Rotated, sqlx::Error> {
    let mut txn = conn.begin().await?;
    let spent = match r.step {
        Step::Advance { from } => {
            sqlx::query(AssertSqlSafe(ADVANCE_MYSQL))
                .bind(from + 1)
                .bind(r.at)
                .bind(r.expires_at)
                .bind(r.token)
                .bind(from)
                .execute(&mut *txn)
                .await?
        }
        Step::Upgrade { .. } => {
            sqlx::query(AssertSqlSafe(SPEND_MYSQL))
                .bind(r.at)
                .bind(r.token)
                .execute(&mut *txn)
                .await?
        }
    };
    if spent.rows_affected() != 1 {
        txn.rollback().await?;
        return Ok(Rotated::AlreadySpent);
    }
    let refreshed = sqlx::query(AssertSqlSafe(REFRESHED_MYSQL))
        .bind(r.expires_at)
        .bind(r.at)
        .bind(r.client.ip_text())
        .bind(r.client.user_agent.as_deref())
        .bind(r.session)
        .execute(&mut *txn)
        .await?;
    if refreshed.rows_affected() != 1 {
        txn.rollback().await?;
        return Ok(Rotated::SessionGone);
    }
    if let Step::Upgrade { chain_hash } = &r.step {
        sqlx::query(AssertSqlSafe(INSERT_MYSQL))
            .bind(new_id())
            .bind(r.session)
            .bind(chain_hash.as_str())
            .bind(r.at)
            .bind(r.expires_at)
            .execute(&mut *txn)
            .await?;
    }
    txn.commit().await?;
    Ok(Rotated::Done)
}

/// MySQL: moves chain `?4` on to generation `?1` at `?2`, expiring at `?3`, if its live
/// generation is still `?5`.
const ADVANCE_MYSQL: &str = "UPDATE refresh_tokens SET generation = ?, rotated_at = ?, \
     expires_at = ? WHERE id = ? AND generation = ? AND spent_at IS NULL";

/// MySQL: spends token `?2` (issued before chains) at `?1`, if unspent.
const SPEND_MYSQL: &str =
    "UPDATE refresh_tokens SET spent_at = ? WHERE id = ? AND spent_at IS NULL";

/// MySQL: refreshes session `?5` (expiry, last use, address, user agent), if not revoked.
const REFRESHED_MYSQL: &str = "UPDATE sessions SET expires_at = ?, last_used_at = ?, \
     last_ip = ?, last_user_agent = ? WHERE id = ? AND revoked_at IS NULL";

/// MySQL: starts the session's chain at generation 0 (id, session, chain hash, created,
/// expires).
const INSERT_MYSQL: &str = "INSERT INTO refresh_tokens \
     (id, session_id, token_hash, created_at, expires_at, spent_at, generation, rotated_at) \
     VALUES (?, ?, ?, ?, ?, NULL, 0, NULL)";

/// A chain's rotation on PostgreSQL, one statement. `$1` the time, `$2` the chain's row,
/// `$3` the new expiry, `$4`/`$5` the client's address and user agent, `$6` the session,
/// `$7` the generation spent. One row: how many chains moved on (0 or 1), then how many
/// sessions were refreshed (0 or 1); the session only if the chain moved. As in
/// [`UPGRADE_POSTGRES`], a session revoked between the two steps leaves the chain moved
/// on, which no client can tell: a revoked session's tokens are refused whatever their
/// generation.
const ADVANCE_POSTGRES: &str = "WITH spent AS (\
       UPDATE refresh_tokens SET generation = $7 + 1, rotated_at = $1, expires_at = $3 \
       WHERE id = $2 AND generation = $7 AND spent_at IS NULL RETURNING session_id), \
     refreshed AS (\
       UPDATE sessions SET expires_at = $3, last_used_at = $1, last_ip = $4, \
         last_user_agent = $5 \
       WHERE id = $6 AND revoked_at IS NULL AND id IN (SELECT session_id FROM spent) \
       RETURNING id) \
     SELECT (SELECT count(*) FROM spent), (SELECT count(*) FROM refreshed)";

/// The rotation of a token issued before chains on PostgreSQL. `$1` the time, `$2` the
/// token spent, `$3` the
/// new expiry, `$4`/`$5` the client's address and user agent, `$6` the session, `$7` the
/// hash of the chain that starts, `$8` its row id. One row: how many tokens were spent (0 or 1), then
/// how many successors were stored (0 or 1). The session is refreshed only if the spend
/// matched, and the successor stored only if the session was. (PostgreSQL runs every
/// data-modifying CTE to completion whether or not the final `SELECT` reads it.)
///
/// One round trip, and no `BEGIN`/`COMMIT` around it: the transaction form took seven
/// (bench/FINDINGS.md, issue 17). The statement is atomic on its own, and committed when it
/// answers. One difference from the transaction form: a session revoked between the spend
/// and its refresh leaves the token spent (there it was rolled back). The session is
/// revoked either way, and a token of a revoked session is refused before anything looks
/// at whether it was spent, so no client sees the difference.
const UPGRADE_POSTGRES: &str = "WITH spent AS (\
       UPDATE refresh_tokens SET spent_at = $1 \
       WHERE id = $2 AND spent_at IS NULL RETURNING session_id), \
     refreshed AS (\
       UPDATE sessions SET expires_at = $3, last_used_at = $1, last_ip = $4, \
         last_user_agent = $5 \
       WHERE id = $6 AND revoked_at IS NULL AND id IN (SELECT session_id FROM spent) \
       RETURNING id), \
     stored AS (\
       INSERT INTO refresh_tokens (id, session_id, token_hash, created_at, expires_at, \
         spent_at, generation, rotated_at) \
       SELECT $8, id, $7, $1, $3, NULL, 0, NULL FROM refreshed RETURNING id) \
     SELECT (SELECT count(*) FROM spent), (SELECT count(*) FROM stored)";
