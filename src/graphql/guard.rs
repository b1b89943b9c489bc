//! `Authenticated`: the bearer-token guard on fields that need a caller.

use async_graphql::{Context, Guard, Result};

use super::context::RequestContext;
use super::types::auth;
use crate::error::AuthError;

/// Admits requests whose access token is valid and whose session is live.
pub struct Authenticated;

impl Guard for Authenticated {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        request(ctx)?.principal(auth(ctx)?).await?;
        Ok(())
    }
}

/// The per-request context the HTTP layer attaches to every operation; missing, it is a
/// fault of the server, not of the request.
pub fn request<'a>(ctx: &Context<'a>) -> Result<&'a RequestContext, AuthError> {
    ctx.data_opt::<RequestContext>()
        .ok_or_else(|| AuthError::internal_msg("request context missing"))
}
