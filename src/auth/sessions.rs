//! Sessions: opening one, the guard (authenticate), logout and the purge of dead ones.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::events::{Client, Event, EventKind};
use super::rotation::{Presented, as_presented, judge_refresh};
use super::tokens::{Amr, RefreshToken};
use super::{Account, AuthService, Issued, Principal};
use crate::entity::session;
use crate::error::AuthError;
use crate::store::{FoundRefresh, Write};

impl AuthService {
    /// Inserts a session of `client`, authenticated by `amr`, and its refresh-token chain,
    /// and mints the pair (the chain's generation 0).
    pub(super) async fn open_session(
        &self,
        write: &Write,
        account: Account,
        at: DateTime<Utc>,
        client: &Client,
        amr: Amr,
    ) -> Result<Issued, AuthError> {
        let session_id = Uuid::new_v4();
        let expires_at = at + self.refresh_ttl;
        write
            .sessions()
            .insert(session_id, account.id, at, expires_at, client, amr.stored())
            .await?;
        let refresh = self.keys.new_refresh();
        write
            .refresh_tokens()
            .insert(
                session_id,
                self.keys.hash(&refresh),
                refresh.generation(),
                at,
                expires_at,
            )
            .await?;
        self.issue(account, session_id, refresh, amr, at)
    }

    /// Mints the access token of a pair whose refresh token is stored already, for a
    /// session authenticated by `amr`.
    pub(super) fn issue(
        &self,
        account: Account,
        session_id: Uuid,
        refresh_token: RefreshToken,
        amr: Amr,
        at: DateTime<Utc>,
    ) -> Result<Issued, AuthError> {
        let access_token = self
            .keys
            .mint_access_as(account.id, session_id, amr, at)
            .map_err(AuthError::internal)?;
        Ok(Issued {
            access_token,
            refresh_token,
            expires_in: self.access_ttl.num_seconds(),
            refresh_expires_in: self.refresh_ttl.num_seconds(),
            account,
            session_id,
        })
    }

    /// Resolves a bearer token to its caller; refused unless its session is live right now.
    pub async fn authenticate(&self, bearer: &str) -> Result<Principal, AuthError> {
        let at = self.now();
        let claims = self.keys.verify_access(bearer, at).map_err(|e| {
            tracing::debug!(error = %e, "access token refused");
            AuthError::Unauthenticated
        })?;
        let account = self.store.sessions().live_account(claims.sid, at).await?;
        let account = account.filter(|a| a.id == claims.sub);
        Ok(Principal {
            account: account.ok_or(AuthError::Unauthenticated)?,
            session_id: claims.sid,
        })
    }

    /// Revokes the caller's session (found by bearer, by refresh token, or both), or with
    /// `all_sessions` every session of its user.
    pub async fn logout(
        &self,
        principal: Option<&Principal>,
        refresh: Option<&str>,
        all_sessions: bool,
        client: &Client,
    ) -> Result<(), AuthError> {
        let mut sessions: Vec<(Uuid, Uuid)> = Vec::new();
        if let Some(p) = principal {
            sessions.push((p.session_id, p.account.id));
        }
        if let Some(raw) = refresh {
            match self.session_of_refresh(raw, client).await {
                Ok(session) => sessions.push((session.id, session.user_id)),
                // With a valid bearer the caller's session is known; a stale refresh token
                // (typically that session's, already rotated) must not block the logout.
                Err(AuthError::InvalidRefreshToken) if principal.is_some() => {}
                Err(e) => return Err(e),
            }
        }
        if sessions.is_empty() {
            return Err(AuthError::Unauthenticated);
        }
        let at = self.now();
        let write = self.store.begin_write().await?;
        let table = write.sessions();
        if all_sessions {
            let users = sessions.iter().map(|(_, user)| *user);
            table.revoke_all_of(users, at).await?;
        } else {
            table.revoke(sessions.iter().map(|(id, _)| *id), at).await?;
        }
        sessions.dedup();
        let kind = if all_sessions {
            EventKind::LogoutAll
        } else {
            EventKind::Logout
        };
        for (session, user) in sessions {
            let event = Event::success(kind, client).user(user).session(session);
            self.record(&write, event, at).await?;
        }
        self.store.commit_write(write).await
    }

    /// The live session a refresh token proves, for logout. A spent token outside the
    /// grace window is reuse, and revokes its session as `refresh` would.
    async fn session_of_refresh(
        &self,
        raw: &str,
        client: &Client,
    ) -> Result<session::Model, AuthError> {
        let token = RefreshToken::parse(raw)
            .filter(|t| self.keys.authentic(t))
            .ok_or(AuthError::InvalidRefreshToken)?;
        let at = self.now();
        let FoundRefresh {
            token: row,
            session,
            ..
        } = self.find_refresh(&token).await?;
        let row = as_presented(&row, token.generation()).ok_or(AuthError::InvalidRefreshToken)?;
        match judge_refresh(&row, &session, at, self.reuse_grace) {
            Presented::Live | Presented::InGrace => Ok(session),
            Presented::SessionDead | Presented::Expired => Err(AuthError::InvalidRefreshToken),
            Presented::Reused => {
                self.revoke_for_reuse(&session, client).await?;
                Err(AuthError::InvalidRefreshToken)
            }
        }
    }

    /// Revokes the session of a spent refresh token presented again (by `client`).
    pub(super) async fn revoke_for_reuse(
        &self,
        session: &session::Model,
        client: &Client,
    ) -> Result<(), AuthError> {
        tracing::warn!(session_id = %session.id, "spent refresh token presented again; session revoked");
        let at = self.now();
        let write = self.store.begin_write().await?;
        write.sessions().revoke([session.id], at).await?;
        let event = Event::failure(EventKind::RefreshReuse, client)
            .user(session.user_id)
            .session(session.id);
        self.record(&write, event, at).await?;
        self.store.commit_write(write).await
    }

    /// Deletes what can never be used again: expired refresh and mailed tokens, MFA tickets and
    /// passkey challenges, and sessions that
    /// expired or were revoked more than `keep` ago (their tokens go with them). Spent
    /// tokens of live sessions stay, so a replay is still recognised as reuse.
    /// Security events older than `SECURITY_EVENTS_RETENTION` go too.
    pub async fn purge_dead_sessions(&self, keep: chrono::Duration) -> Result<u64, AuthError> {
        self.store.ensure_file()?;
        let at = self.now();
        let tokens = self.store.refresh_tokens().delete_expired(at).await?;
        let mailed = self.store.email_tokens().delete_expired(at).await?;
        let tickets = self
            .store
            .second_factors()
            .delete_expired_tickets(at)
            .await?;
        let ceremonies = self.store.passkeys().delete_expired_challenges(at).await?;
        let sessions = self.store.sessions().delete_dead_before(at - keep).await?;
        let events = self.purge_security_events().await?;
        Ok(tokens + mailed + tickets + ceremonies + sessions + events)
    }
}
