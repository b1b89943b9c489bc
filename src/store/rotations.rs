//! A refresh token's rotation as one write: spend it, extend its session, store its
//! successor, and read the account the new access token names.
//!
//! On an SQLite file the rotations waiting at one moment commit together, each in its own
//! savepoint, with one `fsync` ([`group_commit`]); elsewhere, and whenever the group
//! writer is unavailable, each is its own transaction on the pool. Either way a rotation
//! is answered only after its commit.

mod group_commit;

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub(super) use group_commit::GroupCommit;

use super::Store;
use crate::auth::{Account, Client};
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
    /// Committed: the successor is the session's live token; the session's account.
    Done(Account),
    /// Nothing written: another request spent the token first.
    AlreadySpent,
    /// Nothing written: the session was revoked (or its account deleted) meanwhile.
    SessionGone,
}

impl Store {
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

    /// The rotation in a transaction of its own on the pool.
    async fn rotate_alone(&self, r: &Rotation) -> Result<Rotated, AuthError> {
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
        let Some(account) = write.users().of_session(r.session).await? else {
            write.rollback().await?;
            return Ok(Rotated::SessionGone);
        };
        self.commit_write(write).await?;
        Ok(Rotated::Done(account))
    }
}
