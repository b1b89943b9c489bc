//! The account's lifecycle by email: proving the address, a forgotten password, changing
//! the password or the address, deleting the account. Mails go through the outbox; each
//! field that sends one counts against the mail budgets (per address, per client IP).

use async_graphql::{Context, Object, Result};
use uuid::Uuid;

use super::guard::{Authenticated, request};
use super::types::{AuthPayload, User, auth, auth_arc};
use crate::domain::{Email, InvalidInput, Password};
use crate::error::AuthError;

#[derive(Default)]
pub struct LifecycleMutation;

/// `input` parsed, with any error named after the GraphQL argument `field`.
fn renamed<T>(field: &'static str, parsed: Result<T, InvalidInput>) -> Result<T, AuthError> {
    parsed.map_err(|e| InvalidInput { field, ..e }.into())
}

/// The bearer's user, if a valid bearer was sent; a token is then refused if it is not
/// theirs. No bearer (or an expired one) is fine: the token is the proof.
async fn caller(ctx: &Context<'_>) -> Result<Option<Uuid>> {
    match request(ctx)?.principal(auth(ctx)?).await {
        Ok(p) => Ok(Some(p.account.id)),
        Err(AuthError::Unauthenticated) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[Object]
impl LifecycleMutation {
    /// Mails the caller a new verification link (older links stop working). Answers `true`
    /// also when the address is already verified, and then sends nothing.
    #[graphql(guard = "Authenticated")]
    async fn request_email_verification(&self, ctx: &Context<'_>) -> Result<bool> {
        let auth = auth(ctx)?;
        let request = request(ctx)?;
        let principal = request.principal(auth).await?;
        auth.request_email_verification(&principal, request.client())
            .await?;
        Ok(true)
    }

    /// Uses the token of a verification or email-change mail: the address is verified
    /// (and, for a change, becomes the account's). `INVALID_TOKEN` for any token that is
    /// not a live one of these kinds.
    async fn verify_email(&self, ctx: &Context<'_>, token: String) -> Result<User> {
        let caller = caller(ctx).await?;
        let client = request(ctx)?.client();
        Ok(auth(ctx)?
            .verify_email(&token, caller, client)
            .await?
            .into())
    }

    /// Mails a password-reset link if an account has this address. Always `true`: the
    /// answer and its timing say nothing about whether the address is known.
    async fn request_password_reset(&self, ctx: &Context<'_>, email: String) -> Result<bool> {
        let auth = auth_arc(ctx)?;
        let email = Email::parse(&email)?;
        auth.request_password_reset(email, request(ctx)?.client())
            .await?;
        Ok(true)
    }

    /// Spends a reset token: sets the password, verifies the address, ends every session
    /// of the account and opens a new one.
    async fn reset_password(
        &self,
        ctx: &Context<'_>,
        token: String,
        new_password: String,
    ) -> Result<AuthPayload> {
        let password = renamed("newPassword", Password::parse(&new_password))?;
        let caller = caller(ctx).await?;
        let client = request(ctx)?.client();
        let issued = auth(ctx)?
            .reset_password(&token, password, caller, client)
            .await?;
        Ok(issued.into())
    }

    /// Replaces the password. Ends every other session of the account; the caller's
    /// continues with the returned pair (its older refresh tokens stop working).
    #[graphql(guard = "Authenticated")]
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        current_password: String,
        new_password: String,
    ) -> Result<AuthPayload> {
        let auth = auth(ctx)?;
        let password = renamed("newPassword", Password::parse(&new_password))?;
        let request = request(ctx)?;
        let principal = request.principal(auth).await?;
        let issued = auth
            .change_password(&principal, &current_password, password, request.client())
            .await?;
        Ok(issued.into())
    }

    /// Starts a change of address: a verification link to the new address, a notice to
    /// the current one. The address changes when the link's token is given to
    /// `verifyEmail`.
    #[graphql(guard = "Authenticated")]
    async fn change_email(
        &self,
        ctx: &Context<'_>,
        new_email: String,
        password: String,
    ) -> Result<bool> {
        let auth = auth(ctx)?;
        let request = request(ctx)?;
        let email = renamed("newEmail", Email::parse_new(&new_email))?;
        let principal = request.principal(auth).await?;
        auth.change_email(&principal, email, &password, request.client())
            .await?;
        Ok(true)
    }

    /// Deletes the account, its sessions and its pending mails. Its tokens stop working
    /// at once.
    #[graphql(guard = "Authenticated")]
    async fn delete_account(&self, ctx: &Context<'_>, password: String) -> Result<bool> {
        let auth = auth(ctx)?;
        let request = request(ctx)?;
        let principal = request.principal(auth).await?;
        auth.delete_account(&principal, &password, request.client())
            .await?;
        Ok(true)
    }
}
