//! The opaque refresh token and its HMAC.
//!
//! Refresh tokens are 256 random bits, base64url-encoded (43 characters, no dots, so never
//! a JWT). The database holds only HMAC-SHA-256(refresh secret, token). A rotated token's
//! successor is derived from it with the same key, so a retry inside the grace window gets
//! the same successor back without the plaintext ever being stored.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use sha2::Sha256;

use crate::config::TokenSettings;

/// Length of an encoded refresh token.
pub const REFRESH_TOKEN_LEN: usize = 43;

/// A refresh token in plaintext: only ever in a response or a request, never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken(String);

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshToken(***)")
    }
}

impl RefreshToken {
    /// Accepts only the shape we issue; anything else is not worth a database lookup.
    pub fn parse(raw: &str) -> Option<Self> {
        super::is_opaque(raw).then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Makes refresh tokens and their stored hashes with the refresh secret.
pub struct RefreshKeys {
    key: Vec<u8>,
}

impl RefreshKeys {
    pub fn new(settings: &TokenSettings) -> Self {
        Self {
            key: settings.refresh_secret.expose_secret().as_bytes().to_vec(),
        }
    }

    /// A fresh refresh token for a new session.
    pub fn new_refresh(&self) -> RefreshToken {
        RefreshToken(super::random_opaque())
    }

    /// The token that replaces `token` when it is rotated; the same every time.
    pub fn successor(&self, token: &RefreshToken) -> RefreshToken {
        RefreshToken(URL_SAFE_NO_PAD.encode(self.mac(b"successor", token)))
    }

    /// What the database stores and looks tokens up by.
    pub fn hash(&self, token: &RefreshToken) -> String {
        crate::hex::lower(&self.mac(b"storage", token))
    }

    fn mac(&self, purpose: &[u8], token: &RefreshToken) -> [u8; 32] {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC accepts any key length");
        mac.update(purpose);
        mac.update(b":");
        mac.update(token.0.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    fn keys() -> RefreshKeys {
        RefreshKeys::new(&Settings::defaults().tokens)
    }

    #[test]
    fn refresh_tokens_are_43_url_safe_characters_and_unique() {
        let keys = keys();
        let a = keys.new_refresh();
        let b = keys.new_refresh();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), REFRESH_TOKEN_LEN);
        assert!(RefreshToken::parse(a.as_str()).is_some());
        assert!(RefreshToken::parse("not-a-token").is_none());
        assert!(RefreshToken::parse(&format!("{}.", &a.as_str()[..42])).is_none());
    }

    #[test]
    fn the_successor_is_deterministic_and_distinct() {
        let keys = keys();
        let t = keys.new_refresh();
        assert_eq!(keys.successor(&t), keys.successor(&t));
        assert_ne!(keys.successor(&t), t);
        assert!(RefreshToken::parse(keys.successor(&t).as_str()).is_some());
    }

    #[test]
    fn the_stored_hash_is_keyed_hex_and_not_the_token() {
        let a = keys();
        let b = keys();
        let t = a.new_refresh();
        let h = a.hash(&t);
        assert_eq!(h.len(), 64);
        assert!(h.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(h, b.hash(&t), "another refresh secret gives another hash");
    }

    #[test]
    fn debug_hides_the_refresh_token() {
        let t = keys().new_refresh();
        assert!(!format!("{t:?}").contains(t.as_str()));
    }
}
