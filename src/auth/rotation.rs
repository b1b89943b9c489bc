//! Rotation: a refresh token is spent for a new pair, once; a replay revokes its session.
//!
//! What a presented token is ([`judge_refresh`]), and what `refresh` does with it:
//!
//! ```text
//!   session revoked or expired ──────────────────────────────► SessionDead  → refused
//!   unspent ── expires_at <= now ────────────────────────────► Expired      → refused
//!      │  └─ otherwise ──────────────────────────────────────► Live         → rotate
//!      │                                      (lost the race to spend it: as InGrace)
//!   spent ──── now - spent_at <= grace ──────────────────────► InGrace      → the successor again
//!         └─── otherwise ────────────────────────────────────► Reused       → revoke the session, refused
//! ```
//!
//! Logout asks the same question of a token it is given: Live and InGrace prove the
//! session, Reused revokes it, the rest are refused.

use chrono::{DateTime, Utc};

use super::events::Client;
use super::tokens::{Amr, RefreshToken};
use super::{Account, AuthService, Issued};
use crate::entity::{refresh_token, session};
use crate::error::AuthError;
use crate::store::{FoundRefresh, Rotated, Rotation};

/// What a presented refresh token is, at a given instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented {
    /// Its session is revoked or expired: it proves nothing, whatever its own state.
    SessionDead,
    /// Never spent, but past its expiry.
    Expired,
    /// The session's live token.
    Live,
    /// Spent no longer than the grace window ago: a retry of the refresh that spent it.
    InGrace,
    /// Spent longer ago than the grace window: a replay.
    Reused,
}

/// The one judgement of a presented refresh token (stored as `token`, of `session`) at
/// `at`, for `refresh` and for logout alike.
pub fn judge_refresh(
    token: &refresh_token::Model,
    session: &session::Model,
    at: DateTime<Utc>,
    grace: chrono::Duration,
) -> Presented {
    if session.revoked_at.is_some() || session.expires_at <= at {
        return Presented::SessionDead;
    }
    match token.spent_at {
        None if token.expires_at <= at => Presented::Expired,
        None => Presented::Live,
        Some(spent_at) if at - spent_at <= grace => Presented::InGrace,
        Some(_) => Presented::Reused,
    }
}

impl AuthService {
    /// Spends `presented` (sent by `client`) and returns a new pair. A spent token
    /// presented again after the grace window revokes its whole session.
    pub async fn refresh(&self, presented: &str, client: &Client) -> Result<Issued, AuthError> {
        let (outcome, result) = self.judge_and_rotate(presented, client).await;
        metrics::counter!("auth_refreshes_total", "outcome" => outcome).increment(1);
        result
    }

    /// [`refresh`](Self::refresh), and the outcome it is counted under.
    async fn judge_and_rotate(
        &self,
        presented: &str,
        client: &Client,
    ) -> (&'static str, Result<Issued, AuthError>) {
        let Some(token) = RefreshToken::parse(presented) else {
            return ("invalid", Err(AuthError::InvalidRefreshToken));
        };
        let at = self.now();
        let found = match self.find_refresh(&token).await {
            Ok(found) => found,
            Err(AuthError::InvalidRefreshToken) => {
                return ("invalid", Err(AuthError::InvalidRefreshToken));
            }
            Err(e) => return ("error", Err(e)),
        };
        match judge_refresh(&found.token, &found.session, at, self.reuse_grace) {
            Presented::SessionDead | Presented::Expired => {
                ("invalid", Err(AuthError::InvalidRefreshToken))
            }
            Presented::Live => match self.rotate(&token, &found, at, client).await {
                Ok(Some(issued)) => ("rotated", Ok(issued)),
                // Another request spent it a moment ago (at `at`, so inside any grace
                // window): treat it like a retry.
                Ok(None) => self.grace(&token, found, at).await,
                Err(e) => (outcome_of(&e), Err(e)),
            },
            Presented::InGrace => self.grace(&token, found, at).await,
            Presented::Reused => match self.revoke_for_reuse(&found.session, client).await {
                Ok(()) => ("reuse_revoked", Err(AuthError::InvalidRefreshToken)),
                Err(e) => ("error", Err(e)),
            },
        }
    }

    /// The successor handed out again inside the grace window.
    async fn grace(
        &self,
        token: &RefreshToken,
        found: FoundRefresh,
        at: DateTime<Utc>,
    ) -> (&'static str, Result<Issued, AuthError>) {
        match self
            .reissue_successor(token, &found.session, found.account, at)
            .await
        {
            Ok(issued) => ("grace", Ok(issued)),
            Err(e) => (outcome_of(&e), Err(e)),
        }
    }

    /// The stored token, its session and the session's account; unknown tokens are
    /// `INVALID_REFRESH_TOKEN`.
    pub(super) async fn find_refresh(
        &self,
        token: &RefreshToken,
    ) -> Result<FoundRefresh, AuthError> {
        self.store
            .refresh_tokens()
            .find_with_session(self.keys.hash(token))
            .await?
            .ok_or(AuthError::InvalidRefreshToken)
    }

    /// Spends the token `found` with one conditional update and stores its successor, in
    /// one transaction (committed with others on SQLite: `crate::store::Store::rotate`).
    /// `None` if another request spent it first. The new access token names the account
    /// as read with the token, a moment before.
    async fn rotate(
        &self,
        token: &RefreshToken,
        found: &FoundRefresh,
        at: DateTime<Utc>,
        client: &Client,
    ) -> Result<Option<Issued>, AuthError> {
        let (row, session) = (&found.token, &found.session);
        // The session keeps how it was authenticated through every rotation.
        let amr = Amr::from_stored(session.amr.as_deref());
        let successor = self.keys.successor(token);
        let rotation = Rotation {
            token: row.id,
            session: row.session_id,
            successor_hash: self.keys.hash(&successor),
            at,
            expires_at: at + self.refresh_ttl,
            client: client.clone(),
        };
        match self.store.rotate(rotation).await? {
            Rotated::Done => self
                .issue(found.account.clone(), row.session_id, successor, amr, at)
                .map(Some),
            Rotated::AlreadySpent => Ok(None),
            // Revoked between our read and our write.
            Rotated::SessionGone => Err(AuthError::InvalidRefreshToken),
        }
    }

    /// Inside the grace window: hand back the successor that the first refresh stored,
    /// if it is still the session's live token (for `account`, read with the token).
    async fn reissue_successor(
        &self,
        token: &RefreshToken,
        session: &session::Model,
        account: Account,
        at: DateTime<Utc>,
    ) -> Result<Issued, AuthError> {
        let successor = self.keys.successor(token);
        let live = self
            .store
            .refresh_tokens()
            .is_live(self.keys.hash(&successor), at)
            .await?;
        if !live {
            return Err(AuthError::InvalidRefreshToken);
        }
        let amr = Amr::from_stored(session.amr.as_deref());
        self.issue(account, session.id, successor, amr, at)
    }
}

/// The metrics outcome of a refresh that failed.
fn outcome_of(e: &AuthError) -> &'static str {
    match e {
        AuthError::InvalidRefreshToken => "invalid",
        _ => "error",
    }
}

#[cfg(test)]
mod tests;
