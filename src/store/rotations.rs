//! A refresh token's rotation as one write: spend it, extend its session and store its
//! successor. The account the new access token names was read with the token
//! (`RefreshTokens::find_with_session`), so the write reads nothing more.
//!
//! On an SQLite file the rotations waiting at one moment commit together, each in its own
//! savepoint, with one `fsync` ([`group_commit`]); on PostgreSQL each is one statement;
//! elsewhere, and whenever the group writer is unavailable, each is its own transaction
//! on the pool. Either way a rotation is answered only after its commit.
//!
//! [`Store::find_and_rotate`] is the whole of a refresh's storage: the read of the token by
//! its hash, the caller's judgement of what it read, and the rotation that judgement asks
//! for. On an SQLite file the group writer does all three inside its transaction, where
//! its page cache is warm (a reader connection's cache starts cold after every commit of
//! the writer, see `bench/FINDINGS.md`, issue 17 part 7); elsewhere the read goes first
//! and the rotation after, as two steps.

mod group_commit;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement, Value};
use uuid::Uuid;

pub(super) use group_commit::GroupCommit;

use super::Store;
use super::refresh_tokens::FoundRefresh;
use crate::auth::Client;
use crate::error::AuthError;

/// One rotation: spend token `token` of session `session` at `at`, extend the session to
/// `expires_at` as used by `client`, and store `successor_hash` as its live token.
#[derive(Debug, Clone)]
pub struct Rotation {
    pub token: Uuid,
    pub session: Uuid,
    pub successor_hash: String,
    pub at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub client: Client,
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotated {
    /// Committed: the successor is the session's live token.
    Done,
    /// Nothing written: another request spent the token first.
    AlreadySpent,
    /// Nothing written: the session was revoked (or its account deleted) meanwhile.
    SessionGone,
}

/// What a refresh does with the token it read (its judgement): the rotation to commit,
/// or `None` to write nothing. It runs once, on the group writer's thread on an SQLite
/// file, so it must only look at what it is given.
pub type Decide = Box<dyn FnOnce(&FoundRefresh) -> Option<Rotation> + Send>;

/// What [`Store::find_and_rotate`] read, and what the rotation it asked for did (`None`
/// when it asked for none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refreshed {
    pub found: FoundRefresh,
    pub rotated: Option<Rotated>,
}

impl Store {
    /// Reads the refresh token stored under `token_hash` with its session and account,
    /// then commits the rotation `decide` asks for given what was read. `None` when no
    /// token has that hash. On an SQLite file the read and the rotation are one step of
    /// the group writer, in its transaction, so nothing can change between them.
    pub async fn find_and_rotate(
        &self,
        token_hash: String,
        decide: Decide,
    ) -> Result<Option<Refreshed>, AuthError> {
        let (token_hash, decide) = match &self.group_commit {
            Some(group) => match group.find_and_rotate(token_hash, decide).await {
                Ok(done) => return done,
                // The writer is gone (it is never expected to be): the pool still works.
                Err(back) => back,
            },
            None => (token_hash, decide),
        };
        let Some(found) = self.refresh_tokens().find_with_session(token_hash).await? else {
            return Ok(None);
        };
        let rotated = match decide(&found) {
            Some(rotation) => Some(self.rotate_alone(&rotation).await?),
            None => None,
        };
        Ok(Some(Refreshed { found, rotated }))
    }

    /// Rotates as [`Rotation`] says, committed before it returns.
    pub async fn rotate(&self, rotation: Rotation) -> Result<Rotated, AuthError> {
        if let Some(group) = &self.group_commit {
            match group.rotate(rotation).await {
                Ok(done) => return done,
                // The writer is gone (it is never expected to be): the pool still works.
                Err(rotation) => return self.rotate_alone(&rotation).await,
            }
        }
        self.rotate_alone(&rotation).await
    }

    /// The rotation on its own on the pool: one statement on PostgreSQL, a transaction
    /// elsewhere.
    async fn rotate_alone(&self, r: &Rotation) -> Result<Rotated, AuthError> {
        if self.db.get_database_backend() == DatabaseBackend::Postgres {
            return self.rotate_in_one_statement(r).await;
        }
        // The first statement writes, so SQLite takes the write lock (waiting if need be)
        // instead of failing a read transaction's upgrade.
        let write = self.begin_write().await?;
        if !write.refresh_tokens().spend(r.token, r.at).await? {
            write.rollback().await?;
            return Ok(Rotated::AlreadySpent);
        }
        let refreshed = write
            .sessions()
            .refreshed(r.session, r.expires_at, r.at, &r.client)
            .await?;
        if !refreshed {
            write.rollback().await?;
            return Ok(Rotated::SessionGone);
        }
        write
            .refresh_tokens()
            .insert(r.session, r.successor_hash.clone(), r.at, r.expires_at)
            .await?;
        self.commit_write(write).await?;
        Ok(Rotated::Done)
    }

    /// PostgreSQL: the rotation as one statement, its writes chained by data-modifying
    /// CTEs. One round trip, and no `BEGIN`/`COMMIT` round trips around it: the
    /// transaction form took seven (bench/FINDINGS.md, issue 17). The statement is atomic
    /// on its own, and committed when it answers.
    ///
    /// One difference from the transaction form: a session revoked between the spend and
    /// its refresh leaves the token spent (there it was rolled back). The session is
    /// revoked either way, and a token of a revoked session is refused before anything
    /// looks at whether it was spent, so no client sees the difference.
    async fn rotate_in_one_statement(&self, r: &Rotation) -> Result<Rotated, AuthError> {
        let values: [Value; 8] = [
            r.at.into(),
            r.token.into(),
            r.expires_at.into(),
            r.client.ip_text().into(),
            r.client.user_agent.clone().into(),
            r.session.into(),
            r.successor_hash.clone().into(),
            super::refresh_tokens::new_id().into(),
        ];
        let statement =
            Statement::from_sql_and_values(DatabaseBackend::Postgres, ROTATION_SQL, values);
        let row = self
            .db
            .query_one_raw(statement)
            .await?
            .ok_or_else(|| AuthError::internal_msg("the rotation statement returned no row"))?;
        let spent: i64 = row.try_get_by_index(0)?;
        let stored: i64 = row.try_get_by_index(1)?;
        Ok(match (spent, stored) {
            (0, _) => Rotated::AlreadySpent,
            (_, 0) => Rotated::SessionGone,
            _ => Rotated::Done,
        })
    }
}

/// The rotation's statement on PostgreSQL. `$1` the time, `$2` the token spent, `$3` the
/// new expiry, `$4`/`$5` the client's address and user agent, `$6` the session, `$7` the
/// successor's hash, `$8` its row id. One row: how many tokens were spent (0 or 1), then
/// how many successors were stored (0 or 1). The session is refreshed only if the spend
/// matched, and the successor stored only if the session was. (PostgreSQL runs every
/// data-modifying CTE to completion whether or not the final `SELECT` reads it.)
const ROTATION_SQL: &str = "WITH spent AS (\
       UPDATE refresh_tokens SET spent_at = $1 \
       WHERE id = $2 AND spent_at IS NULL RETURNING session_id), \
     refreshed AS (\
       UPDATE sessions SET expires_at = $3, last_used_at = $1, last_ip = $4, \
         last_user_agent = $5 \
       WHERE id = $6 AND revoked_at IS NULL AND id IN (SELECT session_id FROM spent) \
       RETURNING id), \
     stored AS (\
       INSERT INTO refresh_tokens (id, session_id, token_hash, created_at, expires_at, \
         spent_at) \
       SELECT $8, id, $7, $1, $3, NULL FROM refreshed RETURNING id) \
     SELECT (SELECT count(*) FROM spent), (SELECT count(*) FROM stored)";
