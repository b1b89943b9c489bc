//! A forgotten password: `requestPasswordReset` mails a reset token, `resetPassword` spends
//! it for a new password and a new session.
//!
//! The request answers the same for every address, and in the same time: after the rate
//! limits (counted for the address as typed, whether an account has it or not), the
//! lookup and the write run off the request path, in a task of their own. A bounded number
//! run at once; a request beyond them waits for a slot whatever its address.

use std::sync::Arc;

use uuid::Uuid;

use super::events::{Client, Event, EventKind};
use super::mailing::abort;
use super::tokens::{Amr, Purpose};
use super::{AuthService, Issued};
use crate::domain::{Email, Password};
use crate::error::AuthError;

impl AuthService {
    /// Mails a reset token to `email` if an account has it; otherwise does nothing. Either
    /// way the caller learns only that the request was taken.
    pub async fn request_password_reset(
        self: &Arc<Self>,
        email: Email,
        client: &Client,
    ) -> Result<(), AuthError> {
        self.count_mail(client, email.as_str()).await?;
        let slot = self
            .background
            .clone()
            .acquire_owned()
            .await
            .map_err(AuthError::internal)?;
        let service = Arc::clone(self);
        tokio::spawn(async move {
            if let Err(error) = service.mail_reset(&email).await {
                tracing::warn!(%error, "password reset mail not queued");
            }
            drop(slot);
        });
        Ok(())
    }

    async fn mail_reset(&self, email: &Email) -> Result<(), AuthError> {
        let Some(found) = self
            .store
            .users()
            .credentials_by_email(email.as_str())
            .await?
        else {
            return Ok(());
        };
        let account = found.account;
        let at = self.now();
        let write = self.store.begin_write().await?;
        self.mail_token(&write, &account, Purpose::ResetPassword, &account.email, at)
            .await?;
        self.store.commit_write(write).await?;
        self.mail_queued();
        Ok(())
    }

    /// Spends a reset token: sets `password`, proves the address (the token came through
    /// it), revokes every session of the user (their access tokens fail at once) and opens
    /// a new one. `caller` is the bearer's user, if any. An account with a second factor
    /// gets no session: the password is set, and `MfaRequired` hands out a ticket for
    /// `verifyMfa` (a mailbox alone must not pass the second factor).
    pub async fn reset_password(
        &self,
        raw: &str,
        password: Password,
        caller: Option<Uuid>,
        client: &Client,
    ) -> Result<Issued, AuthError> {
        let (_, row) = self
            .find_token(raw, &[Purpose::ResetPassword], caller, self.now())
            .await?;
        // Hashed only for a token that exists: junk tokens cost no bcrypt.
        let hash = self.passwords.hash(&password).await?;
        let at = self.now();
        let write = self.store.begin_write().await?;
        if !write.email_tokens().consume(row.id, at).await? {
            return abort(write, AuthError::InvalidToken).await;
        }
        let users = write.users();
        match users.by_id(row.user_id).await? {
            Some(account) if account.email == row.email => {}
            // The address changed since the mail: the token proves nothing now.
            _ => return abort(write, AuthError::InvalidToken).await,
        }
        users
            .set_password_hash(row.user_id, hash.clone(), at)
            .await?;
        users.mark_verified(row.user_id, &row.email, at).await?;
        write.sessions().revoke_all_of([row.user_id], at).await?;
        // The other reset links, and a change of address someone else may have started.
        for purpose in [Purpose::ResetPassword, Purpose::ChangeEmail] {
            write
                .email_tokens()
                .delete_of(row.user_id, purpose.as_str())
                .await?;
        }
        let Some(account) = users.by_id(row.user_id).await? else {
            return abort(write, AuthError::InvalidToken).await;
        };
        let challenge = self
            .mfa_challenge(&write.second_factors(), row.user_id, &hash, at)
            .await?;
        if let Some(challenge) = challenge {
            let event = Event::success(EventKind::PasswordReset, client)
                .user(row.user_id)
                .detail("mfa_required");
            self.record(&write, event, at).await?;
            self.store.commit_write(write).await?;
            return Err(AuthError::MfaRequired(challenge));
        }
        let issued = self
            .open_session(&write, account, at, client, Amr::Password)
            .await?;
        let event = Event::success(EventKind::PasswordReset, client)
            .user(row.user_id)
            .session(issued.session_id);
        self.record(&write, event, at).await?;
        self.store.commit_write(write).await?;
        tracing::info!(user_id = %row.user_id, "password reset; every other session revoked");
        Ok(issued)
    }
}
