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
//!
//! A session's tokens are the generations of one chain, stored as one row
//! (`auth::tokens::refresh`): the row says which generation is live, and [`as_presented`]
//! reads it as the presented generation's own state, so that the judgement above holds
//! for every generation alike. Every generation before the live one is spent, at the
//! latest when the chain last moved on.

use chrono::{DateTime, Utc};

use super::events::Client;
use super::tokens::{Amr, RefreshToken};
use super::{Account, AuthService, Issued};
use crate::entity::{refresh_token, session};
use crate::error::AuthError;
use crate::store::{Decide, FoundRefresh, Refreshed, Rotated, Rotation, Step};

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

/// The one judgement of a presented refresh token (stored as `token`, as
/// [`as_presented`] reads it, of `session`) at `at`, for `refresh` and for logout alike.
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

/// The stored row `row` as the state of the presented token of chain generation
/// `generation` (`None` for a token issued before chains); `None` when the row cannot be
/// that token's (a generation the chain has not reached).
///
/// The live generation is the row as it is. An earlier generation is spent: when, the row
/// tells only for the one just before the live one (`rotated_at`); an older one was spent
/// earlier still, so it is judged as spent at `rotated_at`. Outside the grace window that
/// judgement (a replay) is exact. Inside it, such a token gets the grace answer, whose
/// successor is no longer live, so it is refused and the session kept, as a row of its own
/// would have been.
pub fn as_presented(
    row: &refresh_token::Model,
    generation: Option<i64>,
) -> Option<refresh_token::Model> {
    match (generation, row.generation) {
        (None, None) => Some(row.clone()),
        (Some(presented), Some(live)) if presented == live => Some(row.clone()),
        (Some(presented), Some(live)) if presented < live => Some(refresh_token::Model {
            spent_at: Some(row.rotated_at.unwrap_or(row.created_at)),
            ..row.clone()
        }),
        _ => None,
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
    ///
    /// The read, the judgement and the rotation are one call to the store
    /// (`Store::find_and_rotate`): on an SQLite file the group writer runs all three in its
    /// transaction. The judgement is made again here on what was read, at the same instant,
    /// to choose what to answer.
    async fn judge_and_rotate(
        &self,
        presented: &str,
        client: &Client,
    ) -> (&'static str, Result<Issued, AuthError>) {
        let Some(token) = RefreshToken::parse(presented).filter(|t| self.keys.authentic(t)) else {
            return ("invalid", Err(AuthError::InvalidRefreshToken));
        };
        let Some(successor) = self.keys.successor(&token) else {
            return ("invalid", Err(AuthError::InvalidRefreshToken));
        };
        let at = self.now();
        let decide = self.rotate_if_live(&token, &successor, at, client);
        let refreshed = match self
            .store
            .find_and_rotate(self.keys.hash(&token), decide)
            .await
        {
            Ok(Some(refreshed)) => refreshed,
            Ok(None) => return ("invalid", Err(AuthError::InvalidRefreshToken)),
            Err(e) => return (outcome_of(&e), Err(e)),
        };
        let Refreshed { found, rotated } = refreshed;
        let Some(state) = as_presented(&found.token, token.generation()) else {
            return ("invalid", Err(AuthError::InvalidRefreshToken));
        };
        match judge_refresh(&state, &found.session, at, self.reuse_grace) {
            Presented::SessionDead | Presented::Expired => {
                ("invalid", Err(AuthError::InvalidRefreshToken))
            }
            Presented::Live => match rotated {
                Some(Rotated::Done) => {
                    // The session keeps how it was authenticated through every rotation.
                    let amr = Amr::from_stored(found.session.amr.as_deref());
                    let session = found.session.id;
                    match self.issue(found.account, session, successor, amr, at) {
                        Ok(issued) => ("rotated", Ok(issued)),
                        Err(e) => (outcome_of(&e), Err(e)),
                    }
                }
                // Another request spent it a moment ago (at `at`, so inside any grace
                // window): treat it like a retry.
                Some(Rotated::AlreadySpent) => self.grace(&token, found, at).await,
                // Revoked between our read and our write.
                Some(Rotated::SessionGone) => ("invalid", Err(AuthError::InvalidRefreshToken)),
                None => (
                    "error",
                    Err(AuthError::internal_msg(
                        "a live refresh token was read but not rotated",
                    )),
                ),
            },
            Presented::InGrace => self.grace(&token, found, at).await,
            Presented::Reused => match self.revoke_for_reuse(&found.session, client).await {
                Ok(()) => ("reuse_revoked", Err(AuthError::InvalidRefreshToken)),
                Err(e) => ("error", Err(e)),
            },
        }
    }

    /// The judgement the store applies to the row it reads for a refresh of `token` at
    /// `at`: a live token is rotated to `successor` (its chain moves on, or a token issued
    /// before chains starts the chain `successor` is generation 0 of), anything else is
    /// left as it is. The same rule as [`judge_refresh`], whose answer the caller reads
    /// again from what was found.
    fn rotate_if_live(
        &self,
        token: &RefreshToken,
        successor: &RefreshToken,
        at: DateTime<Utc>,
        client: &Client,
    ) -> Decide {
        let grace = self.reuse_grace;
        let generation = token.generation();
        let step = match generation {
            Some(from) => Step::Advance { from },
            None => Step::Upgrade {
                chain_hash: self.keys.hash(successor),
            },
        };
        let expires_at = at + self.refresh_ttl;
        let client = client.clone();
        Box::new(move |found: &FoundRefresh| {
            let state = as_presented(&found.token, generation)?;
            let live = judge_refresh(&state, &found.session, at, grace) == Presented::Live;
            live.then_some(Rotation {
                token: found.token.id,
                session: found.token.session_id,
                step,
                at,
                expires_at,
                client,
            })
        })
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

    /// Inside the grace window: hand back the successor that the first refresh stored,
    /// if it is still the session's live token (for `account`, read with the token).
    async fn reissue_successor(
        &self,
        token: &RefreshToken,
        session: &session::Model,
        account: Account,
        at: DateTime<Utc>,
    ) -> Result<Issued, AuthError> {
        let successor = self
            .keys
            .successor(token)
            .ok_or(AuthError::InvalidRefreshToken)?;
        let live = self
            .store
            .refresh_tokens()
            .is_live(self.keys.hash(&successor), successor.generation(), at)
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
