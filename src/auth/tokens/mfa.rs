//! The keys of the second factors: the TOTP secrets' seal, the hashes of MFA tickets and
//! of the password check a ticket is bound to, and the hashes of recovery codes.
//!
//! - TOTP secrets are sealed (ChaCha20-Poly1305) under a key derived from
//!   `KEY_ENCRYPTION_KEY`, the signing keys' key-encryption key, with a purpose of their
//!   own, and bound to the user id (a sealed secret moved to another row does not open).
//!   Without a key-encryption key (HS256, key files, or development), the key is derived
//!   from `JWT_REFRESH_SECRET`, as the outbox's seal is.
//! - A ticket is 256 random bits (43 base64url characters), stored as HMAC-SHA-256 with the
//!   refresh secret and a purpose of its own, like the mailed tokens.
//! - A passkey ceremony's id (between its begin and its finish) is made and stored like a
//!   ticket, with a purpose of its own.
//! - A recovery code has 80 random bits; it is stored as SHA-256 over the user id and the
//!   code. A fast hash is enough at that entropy (2^80 guesses per code offline), and an
//!   unkeyed one keeps the codes working through a change of any secret: they are the way
//!   back in when the TOTP secret cannot be opened.

use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::{KeySource, TokenSettings};
use crate::mail::Sealer;

/// The alphabet of recovery codes: RFC 4648 base32, lower case (no 0/1/8/9 to confuse).
const RECOVERY_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
/// Characters of a recovery code (5 bits each: 80 bits).
pub const RECOVERY_CODE_CHARS: usize = 16;

/// Makes and checks the second factors' secrets, tickets and codes.
pub struct MfaKeys {
    seal: Sealer,
    mac_key: Vec<u8>,
    issuer: String,
}

impl std::fmt::Debug for MfaKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MfaKeys(***)")
    }
}

/// A sealed secret that does not open: the key changed, or the row was tampered with.
#[derive(Debug, thiserror::Error)]
#[error("the TOTP secret cannot be opened (was KEY_ENCRYPTION_KEY changed?)")]
pub struct SealBroken;

impl MfaKeys {
    pub fn new(settings: &TokenSettings) -> Self {
        let sealing_secret = match &settings.key_source {
            KeySource::Database { key_encryption_key } => {
                key_encryption_key.expose_secret().as_bytes().to_vec()
            }
            _ => settings.refresh_secret.expose_secret().as_bytes().to_vec(),
        };
        Self {
            seal: totp_seal(&sealing_secret),
            mac_key: settings.refresh_secret.expose_secret().as_bytes().to_vec(),
            issuer: settings.issuer.clone(),
        }
    }

    /// The issuer authenticator apps show: `JWT_ISSUER`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `secret` sealed for `user`'s row.
    pub fn seal_secret(&self, user: Uuid, secret: &[u8]) -> String {
        let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(secret);
        self.seal.seal_bound(&encoded, user.as_bytes())
    }

    /// The secret `sealed` holds for `user`.
    pub fn open_secret(&self, user: Uuid, sealed: &str) -> Result<Vec<u8>, SealBroken> {
        let encoded = self
            .seal
            .open_bound(sealed, user.as_bytes())
            .map_err(|_| SealBroken)?;
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(encoded)
            .map_err(|_| SealBroken)
    }

    /// A fresh ticket.
    pub fn new_ticket(&self) -> String {
        super::random_opaque()
    }

    /// Whether `raw` has the shape of a ticket we issue.
    pub fn is_ticket_shaped(raw: &str) -> bool {
        super::is_opaque(raw)
    }

    /// What the database stores and looks a ticket up by.
    pub fn ticket_hash(&self, ticket: &str) -> String {
        self.mac(&[b"mfa-ticket:", ticket.as_bytes()])
    }

    /// What the database stores and looks a passkey ceremony up by: the id the client
    /// holds between begin and finish is made and kept like a ticket.
    pub fn passkey_challenge_hash(&self, id: &str) -> String {
        self.mac(&[b"passkey-challenge:", id.as_bytes()])
    }

    /// What a ticket stores of the password hash its login checked.
    pub fn password_digest(&self, password_hash: &str) -> String {
        self.mac(&[b"mfa-password:", password_hash.as_bytes()])
    }

    fn mac(&self, parts: &[&[u8]]) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.mac_key)
            .expect("HMAC accepts any key length");
        for part in parts {
            mac.update(part);
        }
        crate::hex::lower(&mac.finalize().into_bytes())
    }
}

/// The seal of TOTP secrets under `key_encryption_key` (`keys reseal` opens them under one
/// and seals them under another).
pub fn totp_seal(key_encryption_key: &[u8]) -> Sealer {
    Sealer::derived(key_encryption_key, b"totp-secret-seal-v1")
}

/// Ten fresh recovery codes, shown as `xxxx-xxxx-xxxx-xxxx`.
pub fn new_recovery_codes(count: usize) -> Vec<String> {
    let mut rng = rand::rng();
    (0..count)
        .map(|_| {
            let mut bytes = [0u8; RECOVERY_CODE_CHARS];
            rng.fill_bytes(&mut bytes);
            let chars: Vec<char> = bytes
                .iter()
                .map(|b| RECOVERY_ALPHABET[(b & 31) as usize] as char)
                .collect();
            chars
                .chunks(4)
                .map(|c| c.iter().collect::<String>())
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect()
}

/// A recovery code as typed (any case, with or without dashes and spaces), in the form
/// it is hashed in; `None` if it cannot be one.
pub fn normalize_recovery_code(raw: &str) -> Option<String> {
    if raw.len() > 64 {
        return None;
    }
    let code: String = raw
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let valid =
        code.len() == RECOVERY_CODE_CHARS && code.bytes().all(|b| RECOVERY_ALPHABET.contains(&b));
    valid.then_some(code)
}

/// What the database stores of `user`'s recovery code (normalised).
pub fn recovery_code_hash(user: Uuid, normalized: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"recovery-code:");
    hasher.update(user.as_bytes());
    hasher.update(b":");
    hasher.update(normalized.as_bytes());
    crate::hex::lower(&hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    fn keys() -> MfaKeys {
        MfaKeys::new(&Settings::defaults().tokens)
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_user() {
        let keys = keys();
        let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let sealed = keys.seal_secret(alice, b"0123456789abcdefghij");
        assert!(!sealed.contains("0123456789"));
        assert_eq!(
            keys.open_secret(alice, &sealed).unwrap(),
            b"0123456789abcdefghij"
        );
        assert!(keys.open_secret(bob, &sealed).is_err());
        assert!(keys.open_secret(alice, "plain").is_err());
    }

    #[test]
    fn recovery_codes_are_random_and_read_back_however_typed() {
        let codes = new_recovery_codes(10);
        assert_eq!(codes.len(), 10);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 10);
        let code = &codes[0];
        assert_eq!(code.len(), 19);
        let normal = normalize_recovery_code(code).unwrap();
        assert_eq!(
            normalize_recovery_code(&code.to_uppercase().replace('-', " ")),
            Some(normal.clone())
        );
        assert_eq!(normalize_recovery_code("123456"), None);
        assert_eq!(normalize_recovery_code(&"a".repeat(100)), None);
        let user = Uuid::new_v4();
        assert_ne!(
            recovery_code_hash(user, &normal),
            recovery_code_hash(Uuid::new_v4(), &normal)
        );
    }

    #[test]
    fn tickets_and_password_digests_are_keyed_apart() {
        let keys = keys();
        let t = keys.new_ticket();
        assert!(MfaKeys::is_ticket_shaped(&t));
        assert_ne!(keys.ticket_hash(&t), keys.password_digest(&t));
        assert_eq!(keys.ticket_hash(&t).len(), 64);
    }
}
