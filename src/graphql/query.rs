//! Root query fields.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Object, Result};

use super::guard::{Authenticated, request};
use super::types::{Passkey, SecurityEvent, Session, User, auth};

pub struct Query;

#[Object]
impl Query {
    /// The caller's account. Needs `Authorization: Bearer <accessToken>`.
    #[graphql(guard = "Authenticated")]
    async fn me(&self, ctx: &Context<'_>) -> Result<User> {
        let principal = request(ctx)?.principal(auth(ctx)?).await?;
        Ok(principal.account.into())
    }

    /// The caller's live sessions, newest first (the newest 100).
    #[graphql(guard = "Authenticated")]
    async fn sessions(&self, ctx: &Context<'_>) -> Result<Vec<Session>> {
        let auth = auth(ctx)?;
        let principal = request(ctx)?.principal(auth).await?;
        let sessions = auth.sessions(&principal).await?;
        Ok(sessions.into_iter().map(Session::from).collect())
    }

    /// The caller's passkeys, oldest first.
    #[graphql(guard = "Authenticated")]
    async fn passkeys(&self, ctx: &Context<'_>) -> Result<Vec<Passkey>> {
        let auth = auth(ctx)?;
        let principal = request(ctx)?.principal(auth).await?;
        let passkeys = auth.passkeys(&principal).await?;
        Ok(passkeys.into_iter().map(Passkey::from).collect())
    }

    /// The caller's security events, newest first: `first` (1 to 100; null is 20) after
    /// the cursor `after` (an `endCursor` or edge `cursor` of an earlier page).
    #[graphql(guard = "Authenticated")]
    async fn security_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, SecurityEvent>> {
        let auth = auth(ctx)?;
        let principal = request(ctx)?.principal(auth).await?;
        let page = auth
            .security_events(&principal, first.unwrap_or(20), after.as_deref())
            .await?;
        let mut connection = Connection::new(page.has_previous_page, page.has_next_page);
        connection.edges.extend(
            page.events
                .into_iter()
                .map(|(cursor, event)| Edge::new(cursor, SecurityEvent::from(event))),
        );
        Ok(connection)
    }
}
