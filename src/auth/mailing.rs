//! Mailing a token: the one way a flow issues a mailed token and queues the mail that
//! carries it, in the flow's transaction, so that neither exists without the other.
//!
//! A new token supersedes the user's older ones of its purpose. The mail's link points at
//! the front-end (`APP_URL`); only the mutation consumes the token, so a mail scanner or a
//! browser prefetch that opens the link consumes nothing.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use url::Url;
use uuid::Uuid;

use super::tokens::{MailedToken, Purpose};
use super::{Account, AuthService};
use crate::entity::email_token;
use crate::error::AuthError;
use crate::mail::{MailContext, MailKind, Templates, link};
use crate::store::{NewEmailToken, Write};

/// What mails are made from, and the worker's bell.
pub struct Outgoing {
    pub templates: Templates,
    pub app_url: Url,
    /// Rung after a commit that queued mail; the worker also polls, so a lost ring only
    /// delays a mail.
    pub wake: Arc<Notify>,
}

impl Purpose {
    fn kind(self) -> MailKind {
        match self {
            Self::VerifyEmail => MailKind::VerifyEmail,
            Self::ResetPassword => MailKind::ResetPassword,
            Self::ChangeEmail => MailKind::ChangeEmail,
        }
    }

    /// The front-end page the link opens.
    fn page(self) -> &'static str {
        match self {
            Self::VerifyEmail | Self::ChangeEmail => "verify-email",
            Self::ResetPassword => "reset-password",
        }
    }
}

impl AuthService {
    /// Issues a `purpose` token for `account`, mailed to `to`, and queues the mail, inside
    /// `write`. Call [`mail_queued`](Self::mail_queued) after the commit.
    pub(super) async fn mail_token(
        &self,
        write: &Write,
        account: &Account,
        purpose: Purpose,
        to: &str,
        at: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        let ttl = match purpose {
            Purpose::ResetPassword => self.reset_ttl,
            Purpose::VerifyEmail | Purpose::ChangeEmail => self.verification_ttl,
        };
        let token = self.keys.mailed.generate();
        let tokens = write.email_tokens();
        tokens.delete_of(account.id, purpose.as_str()).await?;
        tokens
            .insert(NewEmailToken {
                user_id: account.id,
                purpose: purpose.as_str(),
                token_hash: self.keys.mailed.hash(purpose, &token),
                email: to,
                created_at: at,
                expires_at: at + ttl,
            })
            .await?;
        let context = MailContext {
            to: to.to_owned(),
            username: account.username.clone(),
            link: Some(link(&self.outgoing.app_url, purpose.page(), token.as_str())),
            token: Some(token.as_str().to_owned()),
            expires_in_minutes: ttl.num_minutes(),
            new_email: None,
            app_url: self.outgoing.app_url.to_string(),
        };
        self.queue_mail(write, account.id, purpose.kind(), &context, at)
            .await
    }

    /// Renders mail `kind` for `context` and queues it about `user`, inside `write`.
    pub(super) async fn queue_mail(
        &self,
        write: &Write,
        user: Uuid,
        kind: MailKind,
        context: &MailContext,
        at: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        let mail = self
            .outgoing
            .templates
            .render(kind, context)
            .map_err(AuthError::internal)?;
        write.outbox().enqueue(&mail, Some(user), at).await?;
        Ok(())
    }

    /// Tells the mail worker that a committed write queued mail.
    pub(super) fn mail_queued(&self) {
        self.outgoing.wake.notify_one();
    }
}

impl AuthService {
    /// The live token `raw` is, for one of `purposes`, unless it is someone else's than
    /// `caller` (a bearer sent with it). Every failure is the same `InvalidToken`.
    pub(super) async fn find_token(
        &self,
        raw: &str,
        purposes: &[Purpose],
        caller: Option<Uuid>,
        at: DateTime<Utc>,
    ) -> Result<(Purpose, email_token::Model), AuthError> {
        let token = MailedToken::parse(raw).ok_or(AuthError::InvalidToken)?;
        for &purpose in purposes {
            let hash = self.keys.mailed.hash(purpose, &token);
            if let Some(row) = self.store.email_tokens().find_unexpired(hash, at).await? {
                if caller.is_some_and(|caller| caller != row.user_id) {
                    return Err(AuthError::InvalidToken);
                }
                return Ok((purpose, row));
            }
        }
        Err(AuthError::InvalidToken)
    }
}

/// Rolls `write` back and fails with `error`.
pub(super) async fn abort<T>(write: Write, error: AuthError) -> Result<T, AuthError> {
    write.rollback().await?;
    Err(error)
}
