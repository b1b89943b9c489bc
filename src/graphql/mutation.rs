//! Root mutation fields: parse input into domain types, call the auth service, map the result.
//! Errors pass on with `?`; what a client sees of them is decided in [`super::errors`].
//!
//! Four groups, merged into one root: sessions (here), the account's lifecycle by email
//! ([`super::lifecycle`]), the second factor ([`super::second_factor`]) and passkeys
//! ([`super::passkeys`]).

use async_graphql::{Context, ID, MergedObject, Object, Result};

use super::guard::{Authenticated, request};
use super::types::{AuthPayload, LoginInput, RegisterInput, auth};
use crate::auth::LoginIdentifier;
use crate::domain::{Email, Password, Username};
use crate::error::AuthError;

// The mutation root: the groups of fields, merged.
#[derive(MergedObject, Default)]
pub struct Mutation(
    SessionMutation,
    super::lifecycle::LifecycleMutation,
    super::second_factor::SecondFactorMutation,
    super::passkeys::PasskeyMutation,
);

#[derive(Default)]
pub struct SessionMutation;

#[Object]
impl SessionMutation {
    /// Creates an account, mails a verification link and opens a session (with
    /// `REQUIRE_EMAIL_VERIFICATION`, no session: `EMAIL_NOT_VERIFIED`).
    async fn register(&self, ctx: &Context<'_>, input: RegisterInput) -> Result<AuthPayload> {
        let auth = auth(ctx)?;
        let client = request(ctx)?.client();
        auth.count_register_attempt(client).await?;
        let email = Email::parse_new(&input.email)?;
        // Registration mails a verification link: it spends the mail budgets too.
        auth.count_mail(client, email.as_str()).await?;
        let password = Password::parse(&input.password)?;
        let username = input.username.as_deref().map(Username::parse).transpose()?;
        Ok(auth
            .register(email, password, username, client)
            .await?
            .into())
    }

    /// Opens a session for an email or username and password.
    async fn login(&self, ctx: &Context<'_>, input: LoginInput) -> Result<AuthPayload> {
        let auth = auth(ctx)?;
        let client = request(ctx)?.client();
        auth.count_login_attempt(client).await?;
        let identifier = LoginIdentifier::parse(input.email.as_deref(), input.username.as_deref())?;
        Ok(auth
            .login(identifier, &input.password, client)
            .await?
            .into())
    }

    /// Spends a refresh token for a new pair (rotation).
    async fn refresh_token(&self, ctx: &Context<'_>, refresh_token: String) -> Result<AuthPayload> {
        let client = request(ctx)?.client();
        Ok(auth(ctx)?.refresh(&refresh_token, client).await?.into())
    }

    /// Ends the caller's session, found by bearer token or by `refreshToken` (enough on its
    /// own when the access token has expired). `allSessions` ends every session of the user.
    async fn logout(
        &self,
        ctx: &Context<'_>,
        refresh_token: Option<String>,
        #[graphql(default = false)] all_sessions: bool,
    ) -> Result<bool> {
        let auth = auth(ctx)?;
        let request = request(ctx)?;
        let principal = match request.principal(auth).await {
            Ok(p) => Some(p),
            Err(AuthError::Unauthenticated) => None,
            Err(e) => return Err(e.into()),
        };
        auth.logout(
            principal.as_ref(),
            refresh_token.as_deref(),
            all_sessions,
            request.client(),
        )
        .await?;
        Ok(true)
    }

    /// Ends one of the caller's sessions (see `sessions`): `true` if it was a live
    /// session of the caller, `false` for any other id. Its access token fails on its
    /// next use; revoking the caller's own session is a logout.
    #[graphql(guard = "Authenticated")]
    async fn revoke_session(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let auth = auth(ctx)?;
        let request = request(ctx)?;
        let principal = request.principal(auth).await?;
        Ok(auth
            .revoke_session(&principal, &id, request.client())
            .await?)
    }
}
