//! The opaque refresh token and its HMACs.
//!
//! A refresh token names a **chain**: one row of `refresh_tokens` per session, which every
//! rotation moves one generation on instead of storing a new row (`bench/FINDINGS.md`,
//! issue 17 part 11). The token is 56 bytes, base64url-encoded (75 characters, no dots, so
//! never a JWT):
//!
//! ```text
//!   chain id (16 random bytes) ‖ generation (u64, big-endian) ‖ HMAC-SHA-256(refresh secret, "chain" ‖ id ‖ generation)
//! ```
//!
//! The database holds only HMAC-SHA-256(refresh secret, "chain-storage" ‖ id), the chain's
//! live generation and when it last moved: a token is checked by recomputing its MAC, so
//! any generation (a spent one presented again, a replay) is recognised without a row of
//! its own, and a forged one is refused before the database is asked. A rotated token's
//! successor is the next generation of its chain, so a retry inside the grace window gets
//! the same successor back without the plaintext ever being stored.
//!
//! Tokens issued before chains (43 characters, 256 random bits, stored as
//! HMAC-SHA-256(refresh secret, "storage" ‖ token) with a row each) are still accepted:
//! their successor is generation 0 of a chain whose id is derived from them, so a session
//! moves onto a chain at its first rotation after the upgrade.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::ExposeSecret;
use sha2::Sha256;

use crate::config::TokenSettings;

/// Length of an encoded refresh token of a chain.
pub const REFRESH_TOKEN_LEN: usize = 75;

/// Length of a refresh token issued before chains (256 random bits).
pub const LEGACY_REFRESH_TOKEN_LEN: usize = 43;

/// Bytes of a chain token: id, generation, MAC.
const CHAIN_BYTES: usize = 16 + 8 + 32;

/// A refresh token in plaintext: only ever in a response or a request, never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken {
    raw: String,
    chain: Option<ChainToken>,
}

/// Where a chain token sits: its chain and generation.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Link {
    id: [u8; 16],
    generation: u64,
}

/// A chain token as presented: where it sits, and the MAC it carries.
#[derive(Clone, Copy, PartialEq, Eq)]
struct ChainToken {
    link: Link,
    mac: [u8; 32],
}

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshToken(***)")
    }
}

impl RefreshToken {
    /// Accepts only the shapes we issue; anything else is not worth a database lookup.
    /// Whether a chain token is authentic is [`RefreshKeys::authentic`]'s question.
    pub fn parse(raw: &str) -> Option<Self> {
        if raw.len() == LEGACY_REFRESH_TOKEN_LEN {
            return super::is_opaque(raw).then(|| Self {
                raw: raw.to_owned(),
                chain: None,
            });
        }
        if raw.len() != REFRESH_TOKEN_LEN {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
        let bytes: [u8; CHAIN_BYTES] = bytes.try_into().ok()?;
        let generation = u64::from_be_bytes(bytes[16..24].try_into().ok()?);
        // The database counts generations in a signed 64-bit column.
        i64::try_from(generation).ok()?;
        let link = Link {
            id: bytes[..16].try_into().ok()?,
            generation,
        };
        Some(Self {
            raw: raw.to_owned(),
            chain: Some(ChainToken {
                link,
                mac: bytes[24..].try_into().ok()?,
            }),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    pub fn into_string(self) -> String {
        self.raw
    }

    /// The generation of its chain this token is; `None` for a token issued before chains.
    pub fn generation(&self) -> Option<i64> {
        // `parse` and `RefreshKeys` keep it within `i64`.
        self.chain.map(|chain| chain.link.generation as i64)
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

    /// Generation 0 of a new chain, for a new session.
    pub fn new_refresh(&self) -> RefreshToken {
        let mut id = [0u8; 16];
        rand::rng().fill_bytes(&mut id);
        self.link(Link { id, generation: 0 })
    }

    /// The token that replaces `token` when it is rotated; the same every time: the next
    /// generation of its chain, or for a token issued before chains, generation 0 of the
    /// chain derived from it. `None` only past the last generation a chain can count to.
    pub fn successor(&self, token: &RefreshToken) -> Option<RefreshToken> {
        let next = match token.chain.map(|chain| chain.link) {
            Some(link) => Link {
                id: link.id,
                generation: link
                    .generation
                    .checked_add(1)
                    .filter(|g| i64::try_from(*g).is_ok())?,
            },
            None => {
                let derived = self.mac(&[b"upgrade", b":", token.raw.as_bytes()]);
                Link {
                    id: derived[..16].try_into().expect("a MAC is 32 bytes"),
                    generation: 0,
                }
            }
        };
        Some(self.link(next))
    }

    /// Whether `token` was made with this key: a chain token's MAC is checked (in constant
    /// time); a token issued before chains is random, and only its stored hash can tell.
    pub fn authentic(&self, token: &RefreshToken) -> bool {
        let Some(chain) = token.chain else {
            return true;
        };
        self.link_mac(chain.link).verify_slice(&chain.mac).is_ok()
    }

    /// What the database stores and looks tokens up by: for a chain token its chain's
    /// hash, the same for every generation; for one issued before chains, its own.
    pub fn hash(&self, token: &RefreshToken) -> String {
        let mac = match token.chain {
            Some(chain) => self.mac(&[b"chain-storage", b":", &chain.link.id]),
            None => self.mac(&[b"storage", b":", token.raw.as_bytes()]),
        };
        crate::hex::lower(&mac)
    }

    fn link(&self, link: Link) -> RefreshToken {
        let mut bytes = [0u8; CHAIN_BYTES];
        bytes[..16].copy_from_slice(&link.id);
        bytes[16..24].copy_from_slice(&link.generation.to_be_bytes());
        let mac: [u8; 32] = self.link_mac(link).finalize().into_bytes().into();
        bytes[24..].copy_from_slice(&mac);
        RefreshToken {
            raw: URL_SAFE_NO_PAD.encode(bytes),
            chain: Some(ChainToken { link, mac }),
        }
    }

    fn link_mac(&self, link: Link) -> Hmac<Sha256> {
        let mut mac = self.hmac();
        mac.update(b"chain:");
        mac.update(&link.id);
        mac.update(&link.generation.to_be_bytes());
        mac
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.hmac();
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    fn hmac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC accepts any key length")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    fn keys() -> RefreshKeys {
        RefreshKeys::new(&Settings::defaults().tokens)
    }

    fn other_keys() -> RefreshKeys {
        let mut settings = Settings::defaults().tokens;
        settings.refresh_secret = "another refresh secret, long enough to be accepted".into();
        RefreshKeys::new(&settings)
    }

    fn legacy() -> RefreshToken {
        RefreshToken::parse(&super::super::random_opaque()).expect("43 base64url characters")
    }

    #[test]
    fn new_tokens_are_75_url_safe_characters_of_a_new_chain() {
        let keys = keys();
        let a = keys.new_refresh();
        let b = keys.new_refresh();
        assert_ne!(a, b);
        assert_ne!(
            keys.hash(&a),
            keys.hash(&b),
            "each session has a chain of its own"
        );
        assert_eq!(a.as_str().len(), REFRESH_TOKEN_LEN);
        assert!(!a.as_str().contains('.'), "never the shape of a JWT");
        assert_eq!(a.generation(), Some(0));
        let parsed = RefreshToken::parse(a.as_str()).expect("what we issue parses");
        assert_eq!(parsed, a);
        assert!(keys.authentic(&parsed));
    }

    #[test]
    fn the_successor_is_the_next_generation_of_the_same_chain() {
        let keys = keys();
        let t = keys.new_refresh();
        let next = keys.successor(&t).unwrap();
        assert_eq!(
            keys.successor(&t),
            Some(next.clone()),
            "the same every time"
        );
        assert_ne!(next, t);
        assert_eq!(next.generation(), Some(1));
        assert_eq!(keys.hash(&next), keys.hash(&t), "one stored row per chain");
        assert!(keys.authentic(&next));
        let after = keys.successor(&next).unwrap();
        assert_eq!(after.generation(), Some(2));
        assert_eq!(RefreshToken::parse(after.as_str()), Some(after));
    }

    #[test]
    fn a_forged_or_altered_chain_token_is_not_authentic() {
        let keys = keys();
        let t = keys.successor(&keys.new_refresh()).unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(t.as_str()).unwrap();
        // Another generation under the same MAC.
        bytes[23] ^= 1;
        let moved = RefreshToken::parse(&URL_SAFE_NO_PAD.encode(&bytes)).unwrap();
        assert_eq!(moved.generation(), Some(0));
        assert!(!keys.authentic(&moved));
        // The same generation with one bit of the MAC flipped.
        bytes[23] ^= 1;
        bytes[40] ^= 1;
        let flipped = RefreshToken::parse(&URL_SAFE_NO_PAD.encode(&bytes)).unwrap();
        assert!(!keys.authentic(&flipped));
        // Made with another refresh secret.
        assert!(!keys.authentic(&other_keys().new_refresh()));
        assert!(!other_keys().authentic(&t));
    }

    #[test]
    fn shapes_we_never_issue_do_not_parse() {
        let keys = keys();
        let t = keys.new_refresh();
        assert!(RefreshToken::parse("not-a-token").is_none());
        assert!(RefreshToken::parse(&t.as_str()[..74]).is_none());
        assert!(RefreshToken::parse(&format!("{}A", t.as_str())).is_none());
        assert!(RefreshToken::parse(&format!("{}.", &t.as_str()[..74])).is_none());
        assert!(RefreshToken::parse(&format!("{}.", &legacy().as_str()[..42])).is_none());
        // A generation the database could not count.
        let mut bytes = URL_SAFE_NO_PAD.decode(t.as_str()).unwrap();
        bytes[16] = 0x80;
        assert!(RefreshToken::parse(&URL_SAFE_NO_PAD.encode(&bytes)).is_none());
    }

    #[test]
    fn a_token_from_before_chains_moves_onto_a_chain_derived_from_it() {
        let keys = keys();
        let old = legacy();
        assert_eq!(old.generation(), None);
        assert!(keys.authentic(&old), "only its stored hash can tell");
        let next = keys.successor(&old).unwrap();
        assert_eq!(
            keys.successor(&old),
            Some(next.clone()),
            "the same every time"
        );
        assert_eq!(next.generation(), Some(0));
        assert_eq!(next.as_str().len(), REFRESH_TOKEN_LEN);
        assert!(keys.authentic(&next));
        assert_ne!(keys.hash(&next), keys.hash(&old));
        assert_ne!(keys.successor(&legacy()), Some(next), "each its own chain");
    }

    #[test]
    fn the_stored_hash_is_keyed_hex_and_not_the_token() {
        let a = keys();
        for t in [a.new_refresh(), legacy()] {
            let h = a.hash(&t);
            assert_eq!(h.len(), 64);
            assert!(h.bytes().all(|c| c.is_ascii_hexdigit()));
            assert!(!t.as_str().contains(&h) && !h.contains(t.as_str()));
            assert_ne!(
                h,
                other_keys().hash(&t),
                "another refresh secret gives another hash"
            );
        }
    }

    #[test]
    fn debug_hides_the_refresh_token() {
        let t = keys().new_refresh();
        assert!(!format!("{t:?}").contains(t.as_str()));
    }
}
