//! Root mutation fields: parse input into domain types, call the auth service, map the result.
//! Errors pass on with `?`; what a client sees of them is decided in [`super::errors`].
//!
//! Two groups, merged into one root: sessions (here) and the account's lifecycle by email
//! ([`super::lifecycle`]).

use async_graphql::{Context, MergedObject, Object, Result};

use super::guard::request;
use super::types::{AuthPayload, LoginInput, RegisterInput, auth};
use crate::auth::LoginIdentifier;
use crate::domain::{Email, Password, Username};
use crate::error::AuthError;

// The mutation root: the two groups of fields, merged.
#[derive(MergedObject, Default)]
pub struct Mutation(SessionMutation, super::lifecycle::LifecycleMutation);

#[derive(Default)]
pub struct SessionMutation;

#[Object]
impl SessionMutation {
    /// Creates an account and opens a session.
    async fn register(&self, ctx: &Context<'_>, input: RegisterInput) -> Result<AuthPayload> {
        let auth = auth(ctx)?;
        auth.count_register_attempt(request(ctx)?.client_ip())?;
        let email = Email::parse_new(&input.email)?;
        let password = Password::parse(&input.password)?;
        let username = input.username.as_deref().map(Username::parse).transpose()?;
        Ok(auth.register(email, password, username).await?.into())
    }

    /// Opens a session for an email or username and password.
    async fn login(&self, ctx: &Context<'_>, input: LoginInput) -> Result<AuthPayload> {
        let auth = auth(ctx)?;
        auth.count_login_attempt(request(ctx)?.client_ip())?;
        let identifier = LoginIdentifier::parse(input.email.as_deref(), input.username.as_deref())?;
        Ok(auth.login(identifier, &input.password).await?.into())
    }

    /// Spends a refresh token for a new pair (rotation).
    async fn refresh_token(&self, ctx: &Context<'_>, refresh_token: String) -> Result<AuthPayload> {
        Ok(auth(ctx)?.refresh(&refresh_token).await?.into())
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
        let principal = match request(ctx)?.principal(auth).await {
            Ok(p) => Some(p),
            Err(AuthError::Unauthenticated) => None,
            Err(e) => return Err(e.into()),
        };
        auth.logout(principal.as_ref(), refresh_token.as_deref(), all_sessions)
            .await?;
        Ok(true)
    }
}
