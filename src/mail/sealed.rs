//! Mail bodies are sealed while they wait in the outbox.
//!
//! A verification or reset mail carries its token in plaintext, and the database must not
//! hold one (tokens are stored only as keyed hashes). So the outbox keeps each body
//! encrypted and authenticated (ChaCha20-Poly1305) under a key derived from the refresh
//! secret, and the worker opens it just before sending. A copy of the database, a backup or
//! a read-only breach shows who is being mailed, not the links. A body that cannot be opened
//! (the secret changed while it waited) is given up, since its token could not be used
//! anyway.

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::ExposeSecret;
use sha2::Sha256;

use crate::config::TokenSettings;

/// The prefix of a sealed body: the scheme's version.
const PREFIX: &str = "sealed-v1:";
const NONCE_LEN: usize = 12;

/// Seals and opens outbox bodies.
#[derive(Clone)]
pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(***)")
    }
}

/// A sealed body that this key cannot open.
#[derive(Debug, thiserror::Error)]
#[error("the sealed value cannot be opened (was its secret changed?)")]
pub struct Unopenable;

impl Sealer {
    pub fn new(settings: &TokenSettings) -> Self {
        Self::derived(
            settings.refresh_secret.expose_secret().as_bytes(),
            b"mail-outbox-seal-v1",
        )
    }

    /// A sealer under the key HMAC-SHA-256(`secret`, `purpose`): one secret can key
    /// several sealers that cannot open each other's output.
    pub fn derived(secret: &[u8], purpose: &[u8]) -> Self {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC accepts any key length");
        mac.update(purpose);
        let key: [u8; 32] = mac.finalize().into_bytes().into();
        Self {
            cipher: ChaCha20Poly1305::new(&Key::from(key)),
        }
    }

    pub fn seal(&self, plain: &str) -> String {
        self.seal_bound(plain, b"")
    }

    /// Seals `plain` bound to `context` (authenticated, not stored): it opens only with
    /// the same context, so a sealed value cannot be moved to another row.
    pub fn seal_bound(&self, plain: &str, context: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let payload = Payload {
            msg: plain.as_bytes(),
            aad: context,
        };
        let sealed = self
            .cipher
            .encrypt(&Nonce::from(nonce), payload)
            .expect("ChaCha20-Poly1305 encrypts any length a mail has");
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        format!("{PREFIX}{}", STANDARD_NO_PAD.encode(out))
    }

    /// The body `stored` seals; a body stored before sealing existed is returned as it is.
    pub fn open(&self, stored: &str) -> Result<String, Unopenable> {
        if !stored.starts_with(PREFIX) {
            return Ok(stored.to_owned());
        }
        self.open_bound(stored, b"")
    }

    /// What [`seal_bound`](Self::seal_bound) sealed with `context`; anything else
    /// (plaintext included) is [`Unopenable`].
    pub fn open_bound(&self, stored: &str, context: &[u8]) -> Result<String, Unopenable> {
        let encoded = stored.strip_prefix(PREFIX).ok_or(Unopenable)?;
        let bytes = STANDARD_NO_PAD.decode(encoded).map_err(|_| Unopenable)?;
        if bytes.len() < NONCE_LEN {
            return Err(Unopenable);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| Unopenable)?;
        let plain = self
            .cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: context,
                },
            )
            .map_err(|_| Unopenable)?;
        String::from_utf8(plain).map_err(|_| Unopenable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use secrecy::SecretString;

    fn sealer(secret: &str) -> Sealer {
        let mut tokens = Settings::defaults().tokens;
        tokens.refresh_secret = SecretString::from(secret.to_owned());
        Sealer::new(&tokens)
    }

    #[test]
    fn a_sealed_body_hides_its_text_and_opens_to_it() {
        let s = sealer("one-refresh-secret-0123456789abcdef");
        let body = "Reset: https://app.example/reset-password?token=abc\nabc\n";
        let sealed = s.seal(body);
        assert!(sealed.starts_with(PREFIX));
        assert!(!sealed.contains("abc"), "{sealed}");
        assert_ne!(sealed, s.seal(body), "a fresh nonce each time");
        assert_eq!(s.open(&sealed).unwrap(), body);
    }

    #[test]
    fn another_key_or_a_changed_byte_cannot_open_it() {
        let s = sealer("one-refresh-secret-0123456789abcdef");
        let sealed = s.seal("hello");
        assert!(
            sealer("another-refresh-secret-0123456789ab")
                .open(&sealed)
                .is_err()
        );
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(s.open(&String::from_utf8(tampered).unwrap()).is_err());
        assert!(s.open("sealed-v1:!!").is_err());
        assert!(s.open("sealed-v1:").is_err());
    }

    #[test]
    fn a_body_stored_before_sealing_is_read_as_it_is() {
        let s = sealer("one-refresh-secret-0123456789abcdef");
        assert_eq!(s.open("plain text").unwrap(), "plain text");
    }
}
