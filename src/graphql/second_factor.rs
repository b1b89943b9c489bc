//! The second factor: enrolling and removing TOTP, and finishing a login that needs it.

use async_graphql::{Context, Object, Result};

use super::guard::{Authenticated, request};
use super::types::{AuthPayload, TotpEnrollment, auth};

#[derive(Default)]
pub struct SecondFactorMutation;

#[Object]
impl SecondFactorMutation {
    /// Starts TOTP enrolment: a new secret, pending until `confirmTotp` (enrolling again
    /// before that replaces it). `MFA_ALREADY_ENABLED` while TOTP is on.
    #[graphql(guard = "Authenticated")]
    async fn enroll_totp(&self, ctx: &Context<'_>) -> Result<TotpEnrollment> {
        let auth = auth(ctx)?;
        let request = request(ctx)?;
        let principal = request.principal(auth).await?;
        Ok(auth.enroll_totp(&principal, request.client()).await?.into())
    }

    /// Turns TOTP on with a current code of the enrolled secret, and returns 10 recovery
    /// codes: shown this once, each usable once in `verifyMfa` instead of a code.
    /// `INVALID_MFA_CODE` for a wrong code or no pending enrolment.
    #[graphql(guard = "Authenticated")]
    async fn confirm_totp(&self, ctx: &Context<'_>, code: String) -> Result<Vec<String>> {
        let auth = auth(ctx)?;
        let request = request(ctx)?;
        let principal = request.principal(auth).await?;
        Ok(auth
            .confirm_totp(&principal, &code, request.client())
            .await?)
    }

    /// Turns TOTP off (its recovery codes go with it) and ends every other session of the
    /// account. `false` if it was not on.
    #[graphql(guard = "Authenticated")]
    async fn disable_totp(&self, ctx: &Context<'_>, password: String) -> Result<bool> {
        let auth = auth(ctx)?;
        let request = request(ctx)?;
        let principal = request.principal(auth).await?;
        Ok(auth
            .disable_totp(&principal, &password, request.client())
            .await?)
    }

    /// Finishes a login that answered `MFA_REQUIRED`: its `mfaToken` and a TOTP code or an
    /// unused recovery code. `INVALID_TOKEN` for a ticket that is unknown, expired or used;
    /// `INVALID_MFA_CODE` for a wrong or already used code (the ticket stays usable).
    async fn verify_mfa(
        &self,
        ctx: &Context<'_>,
        mfa_token: String,
        code: String,
    ) -> Result<AuthPayload> {
        let client = request(ctx)?.client();
        Ok(auth(ctx)?
            .verify_mfa(&mfa_token, &code, client)
            .await?
            .into())
    }
}
