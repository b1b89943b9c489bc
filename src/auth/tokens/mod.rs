//! Token minting and checking: access JWTs ([`access`]) signed with the keys of
//! [`signing`], opaque refresh tokens ([`refresh`]), the tokens mails carry ([`mailed`])
//! and the second factors' tickets, codes and sealed secrets ([`mfa`]).

pub mod access;
pub mod mailed;
pub mod mfa;
pub mod refresh;
pub mod signing;

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use access::{ACCESS_TOKEN_TYPE, AccessClaims, AccessKeys, AccessTokenError, Amr, MintError};
pub use mailed::{MailedKeys, MailedToken, Purpose};
pub use mfa::MfaKeys;
pub use refresh::{LEGACY_REFRESH_TOKEN_LEN, REFRESH_TOKEN_LEN, RefreshKeys, RefreshToken};

use std::sync::Arc;

use crate::config::TokenSettings;
use signing::KeyRing;

/// Length of an encoded random opaque token (256 bits): mailed tokens, second-factor
/// tickets, and refresh tokens issued before chains.
const OPAQUE_LEN: usize = 43;

/// Whether `raw` has the shape of the random opaque tokens we issue ([`OPAQUE_LEN`]
/// base64url characters). Anything else is not worth a database lookup.
fn is_opaque(raw: &str) -> bool {
    raw.len() == OPAQUE_LEN
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// 256 fresh random bits, as an opaque token.
fn random_opaque() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Every kind of key, built once from the token settings.
pub struct TokenKeys {
    pub access: AccessKeys,
    pub refresh: RefreshKeys,
    pub mailed: MailedKeys,
    pub mfa: MfaKeys,
}

impl TokenKeys {
    /// The keys of `settings`; a ring fed from the database is empty until loaded (see
    /// [`KeyRing::load`]).
    pub fn new(settings: &TokenSettings) -> Self {
        let ring = Arc::new(KeyRing::new(settings, settings.token_lifetime()));
        Self {
            access: AccessKeys::new(settings, ring),
            refresh: RefreshKeys::new(settings),
            mailed: MailedKeys::new(settings),
            mfa: MfaKeys::new(settings),
        }
    }

    /// Signs an access token for `user` in a password `session`.
    pub fn mint_access(
        &self,
        user: Uuid,
        session: Uuid,
        now: DateTime<Utc>,
    ) -> Result<String, MintError> {
        self.access.mint(user, session, now)
    }

    /// Signs an access token for `user` in `session`, authenticated by `amr`.
    pub fn mint_access_as(
        &self,
        user: Uuid,
        session: Uuid,
        amr: Amr,
        now: DateTime<Utc>,
    ) -> Result<String, MintError> {
        self.access.mint_as(user, session, amr, now)
    }

    /// Checks an access token at `now` (see [`AccessKeys::verify`]).
    pub fn verify_access(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<AccessClaims, AccessTokenError> {
        self.access.verify(token, now)
    }

    /// A fresh refresh token for a new session.
    pub fn new_refresh(&self) -> RefreshToken {
        self.refresh.new_refresh()
    }

    /// The token that replaces `token` when it is rotated (`None` past the last
    /// generation a chain can count to).
    pub fn successor(&self, token: &RefreshToken) -> Option<RefreshToken> {
        self.refresh.successor(token)
    }

    /// Whether `token` was made with the refresh secret, as far as the token alone tells.
    pub fn authentic(&self, token: &RefreshToken) -> bool {
        self.refresh.authentic(token)
    }

    /// What the database stores and looks a refresh token up by.
    pub fn hash(&self, token: &RefreshToken) -> String {
        self.refresh.hash(token)
    }
}
