//! Tokens that mails carry: email verification, password reset, email change.
//!
//! Like refresh tokens, 256 random bits, base64url (43 characters), and stored only as a
//! keyed hash (HMAC-SHA-256 with the refresh secret). The purpose is inside the hash, so a
//! token presented for another purpose is simply not found: one answer, `INVALID_TOKEN`,
//! whatever was wrong with it.

use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use sha2::Sha256;

use crate::config::TokenSettings;

/// What a mailed token is for; stored as [`Purpose::as_str`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Proves the account's current address.
    VerifyEmail,
    /// Sets a new password without the old one.
    ResetPassword,
    /// Proves a new address, which then replaces the account's.
    ChangeEmail,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
            Self::ChangeEmail => "change_email",
        }
    }
}

/// A mailed token in plaintext: only ever in a mail or a request, never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct MailedToken(String);

impl std::fmt::Debug for MailedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MailedToken(***)")
    }
}

impl MailedToken {
    /// Accepts only the shape we issue; anything else is not worth a database lookup.
    pub fn parse(raw: &str) -> Option<Self> {
        super::is_opaque(raw).then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Makes mailed tokens and their stored hashes.
pub struct MailedKeys {
    key: Vec<u8>,
}

impl MailedKeys {
    pub fn new(settings: &TokenSettings) -> Self {
        Self {
            key: settings.refresh_secret.expose_secret().as_bytes().to_vec(),
        }
    }

    pub fn generate(&self) -> MailedToken {
        MailedToken(super::random_opaque())
    }

    /// What the database stores and looks `token` up by, for `purpose`.
    pub fn hash(&self, purpose: Purpose, token: &MailedToken) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC accepts any key length");
        mac.update(b"email-token:");
        mac.update(purpose.as_str().as_bytes());
        mac.update(b":");
        mac.update(token.0.as_bytes());
        crate::hex::lower(&mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    fn keys() -> MailedKeys {
        MailedKeys::new(&Settings::defaults().tokens)
    }

    #[test]
    fn tokens_are_43_url_safe_characters_and_unique() {
        let keys = keys();
        let a = keys.generate();
        assert_ne!(a, keys.generate());
        assert!(MailedToken::parse(a.as_str()).is_some());
        assert!(MailedToken::parse(&a.as_str()[..42]).is_none());
        assert!(MailedToken::parse(&format!("{}é", &a.as_str()[..41])).is_none());
        assert!(MailedToken::parse(&"A".repeat(100_000)).is_none());
    }

    #[test]
    fn the_purpose_is_inside_the_hash() {
        let keys = keys();
        let t = keys.generate();
        let verify = keys.hash(Purpose::VerifyEmail, &t);
        assert_eq!(verify.len(), 64);
        assert_ne!(verify, keys.hash(Purpose::ResetPassword, &t));
        assert_ne!(verify, keys.hash(Purpose::ChangeEmail, &t));
        assert_eq!(verify, keys.hash(Purpose::VerifyEmail, &t));
    }

    #[test]
    fn debug_hides_the_token() {
        let t = keys().generate();
        assert!(!format!("{t:?}").contains(t.as_str()));
    }
}
