//! A refresh token's rotation as one write: spend it (move its chain on a generation, or
//! for a token issued before chains, mark it spent and start the session's chain), and
//! extend its session. The account the new access token names was read with the token, so the
//! write reads nothing more.
//!
//! [`Store::find_and_rotate`] is the whole of a refresh's storage: the read of the token by
//! its hash, the caller's judgement of what it read, and the rotation that judgement asks
//! for, answered only after its commit.
//!
//! - On an SQLite file, the group writer ([`group_commit`]) does all three inside one
//!   transaction for every refresh waiting at that moment, each rotation in its own
//!   savepoint, with one `fsync`. Its page cache is warm, where a reader connection's
//!   starts cold after every commit of the writer (`bench/FINDINGS.md`, issue 17 part 7).
//! - On PostgreSQL and MySQL/MariaDB, the read and the rotation run on one pooled
//!   connection, through sqlx directly ([`server`]): on PostgreSQL the rotation is one
//!   statement, on MySQL one transaction.
//! - Otherwise (an in-memory SQLite database, or the group writer gone), the read goes
//!   through the pool and the rotation is a transaction of its own.

mod group_commit;
mod server;

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub(super) use group_commit::GroupCommit;

use super::Store;
use super::refresh_tokens::FoundRefresh;
use crate::auth::Client;
use crate::error::AuthError;

/// One rotation: spend the live token of row `token` of session `session` at `at` as
/// `step` says, and extend the session to `expires_at` as used by `client`.
#[derive(Debug, Clone)]
pub struct Rotation {
    pub token: Uuid,
    pub session: Uuid,
    pub step: Step,
    pub at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub client: Client,
}

/// How a rotation spends the live token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A chain at generation `from`: it moves on to `from + 1`, in place. No row is added.
    Advance { from: i64 },
    /// A token issued before chains: its row is marked spent, and the session's chain
    /// starts, at generation 0, in a new row stored under `chain_hash`.
    Upgrade { chain_hash: String },
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
        if let Some(server) = &self.server {
            return Ok(server.find_and_rotate(token_hash, decide).await?);
        }
        let Some(found) = self.refresh_tokens().find_with_session(token_hash).await? else {
            return Ok(None);
        };
        let rotated = match decide(&found) {
            Some(rotation) => Some(self.rotate_alone(&rotation).await?),
            None => None,
        };
        Ok(Some(Refreshed { found, rotated }))
    }

    /// The rotation on its own on the pool, as one transaction: on SQLite when the group
    /// writer is not running (an in-memory database, or the writer gone).
    async fn rotate_alone(&self, r: &Rotation) -> Result<Rotated, AuthError> {
        // The first statement writes, so SQLite takes the write lock (waiting if need be)
        // instead of failing a read transaction's upgrade.
        let write = self.begin_write().await?;
        let spent = match r.step {
            Step::Advance { from } => {
                write
                    .refresh_tokens()
                    .advance(r.token, from, r.at, r.expires_at)
                    .await?
            }
            Step::Upgrade { .. } => write.refresh_tokens().spend(r.token, r.at).await?,
        };
        if !spent {
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
        if let Step::Upgrade { chain_hash } = &r.step {
            write
                .refresh_tokens()
                .insert(r.session, chain_hash.clone(), Some(0), r.at, r.expires_at)
                .await?;
        }
        self.commit_write(write).await?;
        Ok(Rotated::Done)
    }
}
