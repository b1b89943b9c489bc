//! Per-request values (client IP, bearer token) and the lazily resolved caller.

use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::auth::{AuthService, Client, Principal};
use crate::error::AuthError;

/// Put into each GraphQL operation by the HTTP layer (one per operation of a batch).
#[derive(Clone)]
pub struct RequestContext(Arc<Inner>);

struct Inner {
    client: Client,
    client_ip: IpAddr,
    bearer: Option<String>,
    principal: OnceCell<Result<Principal, AuthError>>,
}

impl RequestContext {
    pub fn new(client_ip: IpAddr, user_agent: Option<&str>, bearer: Option<String>) -> Self {
        Self(Arc::new(Inner {
            client: Client::new(client_ip, user_agent),
            client_ip,
            bearer,
            principal: OnceCell::new(),
        }))
    }

    pub fn client_ip(&self) -> IpAddr {
        self.0.client_ip
    }

    /// The client's address and user agent (bounded), for sessions and security events.
    pub fn client(&self) -> &Client {
        &self.0.client
    }

    /// The caller, checked once per request however many fields ask.
    pub async fn principal(&self, auth: &AuthService) -> Result<Principal, AuthError> {
        self.0
            .principal
            .get_or_init(|| async {
                match &self.0.bearer {
                    Some(token) => auth.authenticate(token).await,
                    None => Err(AuthError::Unauthenticated),
                }
            })
            .await
            .clone()
    }
}
