//! `Authenticated`: the bearer-token guard on fields that need a caller.

use async_graphql::{Context, Guard, Result};

use super::context::RequestContext;
use super::types::auth;

/// Admits requests whose access token is valid and whose session is live.
pub struct Authenticated;

impl Guard for Authenticated {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        request(ctx)?
            .principal(auth(ctx)?)
            .await
            .map(|_| ())
            .map_err(|e| e.into_graphql())
    }
}

/// The per-request context the HTTP layer attached.
pub fn request<'a>(ctx: &Context<'a>) -> Result<&'a RequestContext> {
    ctx.data::<RequestContext>()
}
