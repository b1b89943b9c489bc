//! Proving an address: the verification mail (sent at registration, and again on
//! request), `verifyEmail`, and the change of address, which takes effect only when the
//! new address is proven the same way.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::events::{Client, Event, EventKind};
use super::mailing::abort;
use super::tokens::Purpose;
use super::{Account, AuthService, Principal};
use crate::domain::{Email, InvalidInput};
use crate::entity::email_token;
use crate::error::AuthError;
use crate::mail::{MailContext, MailKind};
use crate::store::is_unique_violation;

impl AuthService {
    /// Mails the caller a new verification token (the older ones stop working). An address
    /// already verified gets no mail; the answer is the same.
    pub async fn request_email_verification(
        &self,
        caller: &Principal,
        client: &Client,
    ) -> Result<(), AuthError> {
        let account = &caller.account;
        self.count_mail(client, &account.email).await?;
        if account.email_verified_at.is_some() {
            return Ok(());
        }
        let at = self.now();
        let write = self.store.begin_write().await?;
        self.mail_token(&write, account, Purpose::VerifyEmail, &account.email, at)
            .await?;
        self.store.commit_write(write).await?;
        self.mail_queued();
        Ok(())
    }

    /// Uses a verification or email-change token: the address it was mailed to is proven
    /// (and, for a change, becomes the account's). `caller` is the bearer's user, if any.
    pub async fn verify_email(
        &self,
        raw: &str,
        caller: Option<Uuid>,
        client: &Client,
    ) -> Result<Account, AuthError> {
        let at = self.now();
        let purposes = [Purpose::VerifyEmail, Purpose::ChangeEmail];
        let (purpose, row) = self.find_token(raw, &purposes, caller, at).await?;
        match purpose {
            Purpose::ChangeEmail => self.move_to_address(row, at, client).await,
            _ => self.mark_verified(row, at, client).await,
        }
    }

    async fn mark_verified(
        &self,
        row: email_token::Model,
        at: DateTime<Utc>,
        client: &Client,
    ) -> Result<Account, AuthError> {
        let write = self.store.begin_write().await?;
        if !write.email_tokens().consume(row.id, at).await? {
            return abort(write, AuthError::InvalidToken).await;
        }
        // The address changed since the mail: this token proves nothing about the new one.
        if !write
            .users()
            .mark_verified(row.user_id, &row.email, at)
            .await?
        {
            return abort(write, AuthError::InvalidToken).await;
        }
        let account = write.users().by_id(row.user_id).await?;
        let Some(account) = account else {
            return abort(write, AuthError::InvalidToken).await;
        };
        let event = Event::success(EventKind::EmailVerified, client).user(account.id);
        self.record(&write, event, at).await?;
        self.store.commit_write(write).await?;
        Ok(account)
    }

    async fn move_to_address(
        &self,
        row: email_token::Model,
        at: DateTime<Utc>,
        client: &Client,
    ) -> Result<Account, AuthError> {
        let email = Email::parse(&row.email).map_err(AuthError::internal)?;
        let skeleton = email.skeleton_key();
        let write = self.store.begin_write().await?;
        let users = write.users();
        // The write first: on SQLite a transaction that read before it wrote cannot take
        // the write lock once another writer committed (SQLITE_BUSY, not a wait).
        if !write.email_tokens().consume(row.id, at).await? {
            return abort(write, AuthError::InvalidToken).await;
        }
        // Taken meanwhile: the token stays (rolled back), in case the other account lets
        // the address go.
        if users
            .email_taken_by_other(email.as_str(), &skeleton, row.user_id)
            .await?
        {
            return abort(write, AuthError::EmailTaken).await;
        }
        match users
            .change_email(row.user_id, email.as_str(), skeleton, at)
            .await
        {
            Ok(true) => {}
            Ok(false) => return abort(write, AuthError::InvalidToken).await,
            Err(e) if is_unique_violation(&e) => return abort(write, AuthError::EmailTaken).await,
            Err(e) => return Err(e.into()),
        }
        // Tokens mailed to the old address are moot now.
        let tokens = write.email_tokens();
        tokens
            .delete_of(row.user_id, Purpose::VerifyEmail.as_str())
            .await?;
        tokens
            .delete_of(row.user_id, Purpose::ResetPassword.as_str())
            .await?;
        let Some(account) = users.by_id(row.user_id).await? else {
            return abort(write, AuthError::InvalidToken).await;
        };
        let event = Event::success(EventKind::EmailChanged, client).user(account.id);
        self.record(&write, event, at).await?;
        self.store.commit_write(write).await?;
        tracing::info!(user_id = %account.id, "email address changed");
        Ok(account)
    }

    /// Starts a change of the caller's address to `new`: a token to the new address, a
    /// notice to the current one. Nothing changes until the token is used.
    pub async fn change_email(
        &self,
        caller: &Principal,
        new: Email,
        password: &str,
        client: &Client,
    ) -> Result<(), AuthError> {
        let account = &caller.account;
        if new.as_str() == account.email {
            return Err(
                InvalidInput::new("newEmail", "this is already the account's address").into(),
            );
        }
        self.count_mail(client, new.as_str()).await?;
        self.check_password(account.id, password, client).await?;
        if self
            .store
            .users()
            .email_taken_by_other(new.as_str(), &new.skeleton_key(), account.id)
            .await?
        {
            return Err(AuthError::EmailTaken);
        }
        let at = self.now();
        let write = self.store.begin_write().await?;
        self.mail_token(&write, account, Purpose::ChangeEmail, new.as_str(), at)
            .await?;
        let notice = MailContext {
            to: account.email.clone(),
            username: account.username.clone(),
            new_email: Some(new.as_str().to_owned()),
            app_url: self.outgoing.app_url.to_string(),
            ..MailContext::default()
        };
        self.queue_mail(&write, account.id, MailKind::EmailChanged, &notice, at)
            .await?;
        self.store.commit_write(write).await?;
        self.mail_queued();
        Ok(())
    }
}
