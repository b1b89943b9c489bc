//! What the auth service hands out: accounts, callers and issued token pairs.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::tokens::RefreshToken;

/// An account as the rest of the server sees it: no password hash. Its columns are listed
/// in `store::users`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: Uuid,
    pub email: String,
    pub username: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the address was proven; `None` while it is not.
    pub email_verified_at: Option<DateTime<Utc>>,
}

/// Who is calling: the holder of a valid access token of a live session.
#[derive(Debug, Clone)]
pub struct Principal {
    pub account: Account,
    pub session_id: Uuid,
}

/// A freshly issued token pair and the account it belongs to.
#[derive(Debug, Clone)]
pub struct Issued {
    pub access_token: String,
    pub refresh_token: RefreshToken,
    pub expires_in: i64,
    pub refresh_expires_in: i64,
    pub account: Account,
    /// The session the pair belongs to.
    pub session_id: Uuid,
}
