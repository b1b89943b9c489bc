//! Passkeys: adding one (begin, finish), logging in with one, signing up with one alone,
//! and removing one. `Query.passkeys` lists them.

use async_graphql::{Context, ID, Object, Result};

use super::guard::{Authenticated, request};
use super::types::{AuthPayload, Passkey, PasskeyChallengeObject, auth};
use crate::domain::{Email, Username};

#[derive(Default)]
pub struct PasskeyMutation;

#[Object]
impl PasskeyMutation {
    /// Begins adding a passkey to the caller's account. Pass `options` to
    /// `navigator.credentials.create()`, then the credential to
    /// `finishPasskeyRegistration`. `PASSKEYS_DISABLED` when the server has no relying party.
    #[graphql(guard = "Authenticated")]
    async fn begin_passkey_registration(
        &self,
        ctx: &Context<'_>,
    ) -> Result<PasskeyChallengeObject> {
        let auth = auth(ctx)?;
        let principal = request(ctx)?.principal(auth).await?;
        Ok(auth.begin_passkey_registration(&principal).await?.into())
    }

    /// Finishes adding a passkey: `credential` is the JSON of the `PublicKeyCredential` the
    /// browser made (`credential.toJSON()`), `name` the user's label for it. `INVALID_TOKEN`
    /// for a challenge that is unknown, expired, used or not this caller's;
    /// `INVALID_PASSKEY` for a credential that does not verify or is registered already.
    #[graphql(guard = "Authenticated")]
    async fn finish_passkey_registration(
        &self,
        ctx: &Context<'_>,
        challenge_id: String,
        credential: String,
        name: Option<String>,
    ) -> Result<Passkey> {
        let auth = auth(ctx)?;
        let request = request(ctx)?;
        let principal = request.principal(auth).await?;
        Ok(auth
            .finish_passkey_registration(
                &principal,
                &challenge_id,
                &credential,
                name.as_deref(),
                request.client(),
            )
            .await?
            .into())
    }

    /// Removes one of the caller's passkeys; `false` if they have none by that id.
    /// `BAD_USER_INPUT` for the last passkey of an account without a password.
    #[graphql(guard = "Authenticated")]
    async fn remove_passkey(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let auth = auth(ctx)?;
        let request = request(ctx)?;
        let principal = request.principal(auth).await?;
        Ok(auth
            .remove_passkey(&principal, &id, request.client())
            .await?)
    }

    /// Begins a login with a passkey; no account is named (the authenticator offers the
    /// passkeys it holds for this site). Pass `options` to `navigator.credentials.get()`,
    /// then the credential to `finishPasskeyLogin`. Counted against the login budget.
    async fn begin_passkey_login(&self, ctx: &Context<'_>) -> Result<PasskeyChallengeObject> {
        let auth = auth(ctx)?;
        auth.count_login_attempt(request(ctx)?.client()).await?;
        Ok(auth.begin_passkey_login().await?.into())
    }

    /// Finishes a login with a passkey: tokens, as `login` gives (no `MFA_REQUIRED`: a
    /// passkey with user verification is both factors). `INVALID_TOKEN` for a challenge
    /// that is unknown, expired or used; `INVALID_PASSKEY` for a credential that does not
    /// verify.
    async fn finish_passkey_login(
        &self,
        ctx: &Context<'_>,
        challenge_id: String,
        credential: String,
    ) -> Result<AuthPayload> {
        let client = request(ctx)?.client();
        Ok(auth(ctx)?
            .finish_passkey_login(&challenge_id, &credential, client)
            .await?
            .into())
    }

    /// Begins opening an account with a passkey and no password: the address and
    /// username are checked as `register` checks them (`EMAIL_TAKEN`, `USERNAME_TAKEN`) and
    /// counted against its budget. Pass `options` to `navigator.credentials.create()`,
    /// then the credential to `finishPasskeySignup`.
    async fn begin_passkey_signup(
        &self,
        ctx: &Context<'_>,
        email: String,
        username: Option<String>,
    ) -> Result<PasskeyChallengeObject> {
        let auth = auth(ctx)?;
        let client = request(ctx)?.client();
        auth.count_register_attempt(client).await?;
        let email = Email::parse_new(&email)?;
        // The finish mails a verification link: the mail budgets count it now.
        auth.count_mail(client, email.as_str()).await?;
        let username = username.as_deref().map(Username::parse).transpose()?;
        Ok(auth.begin_passkey_signup(email, username).await?.into())
    }

    /// Finishes a signup: the account, its passkey and its first session (with
    /// `REQUIRE_EMAIL_VERIFICATION`, no session: `EMAIL_NOT_VERIFIED`). A verification
    /// mail goes out as for `register`. The account has no password until a
    /// `requestPasswordReset` sets one.
    async fn finish_passkey_signup(
        &self,
        ctx: &Context<'_>,
        challenge_id: String,
        credential: String,
    ) -> Result<AuthPayload> {
        let auth = auth(ctx)?;
        let client = request(ctx)?.client();
        let issued = auth
            .finish_passkey_signup(&challenge_id, &credential, client)
            .await?;
        Ok(issued.into())
    }
}
