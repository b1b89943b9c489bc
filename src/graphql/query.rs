//! Root query fields.

use async_graphql::{Context, Object, Result};

use super::guard::{Authenticated, request};
use super::types::{User, auth};

pub struct Query;

#[Object]
impl Query {
    /// The caller's account. Needs `Authorization: Bearer <accessToken>`.
    #[graphql(guard = "Authenticated")]
    async fn me(&self, ctx: &Context<'_>) -> Result<User> {
        let principal = request(ctx)?.principal(auth(ctx)?).await?;
        Ok(principal.account.into())
    }
}
