//! Token minting and checking: access JWTs (HS256, typed `access`) and opaque refresh tokens.
//!
//! Refresh tokens are 256 random bits, base64url-encoded (43 characters, no dots, so never
//! a JWT). The database holds only HMAC-SHA-256(refresh secret, token). A rotated token's
//! successor is derived from it with the same key, so a retry inside the grace window gets
//! the same successor back without the plaintext ever being stored.

use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hashlink::LruCache;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use crate::config::TokenSettings;

/// The value of the `typ` claim every access token carries and no refresh token has.
pub const ACCESS_TOKEN_TYPE: &str = "access";
/// Longest bearer token worth decoding; ours are about 400 bytes.
const MAX_ACCESS_TOKEN_LEN: usize = 4096;
/// Length of an encoded refresh token.
pub const REFRESH_TOKEN_LEN: usize = 43;
/// Accepted clock skew between instances when checking `exp`, `nbf`, in seconds.
const LEEWAY_SECS: u64 = 5;
/// Access tokens remembered after they verified (about 0.5 KiB each).
const VERIFIED_CAPACITY: usize = 1024;

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    /// User id.
    pub sub: Uuid,
    /// Session id: the guard checks the session is live on every request.
    pub sid: Uuid,
    pub jti: Uuid,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    /// Always [`ACCESS_TOKEN_TYPE`].
    pub typ: String,
}

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
        let ok = raw.len() == REFRESH_TOKEN_LEN
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Why an access token was refused (for the log; clients only see `UNAUTHENTICATED`).
#[derive(Debug, thiserror::Error)]
pub enum AccessTokenError {
    #[error("token too long")]
    TooLong,
    #[error("invalid token: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    #[error("not an access token")]
    WrongType,
    #[error("token expired")]
    Expired,
}

/// Mints and checks tokens with the configured secrets, issuer and audience.
pub struct TokenKeys {
    access_encoding: EncodingKey,
    access_decoding: DecodingKey,
    access_validation: Validation,
    refresh_key: Vec<u8>,
    issuer: String,
    audience: String,
    access_ttl_secs: i64,
    /// Tokens that verified, by their exact text: a client sends the same token on every
    /// request until it expires, and decoding it again (base64, two JSON parses, the HMAC)
    /// was 8 % of a `me` request. Only the identical string hits, and a hit is still
    /// refused once `exp` has passed; the session is checked in the database regardless.
    verified: Mutex<LruCache<Box<str>, AccessClaims>>,
}

impl TokenKeys {
    pub fn new(settings: &TokenSettings) -> Self {
        let access = settings.access_secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        Self {
            access_encoding: EncodingKey::from_secret(access),
            access_decoding: DecodingKey::from_secret(access),
            access_validation: validation,
            refresh_key: settings.refresh_secret.expose_secret().as_bytes().to_vec(),
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            access_ttl_secs: settings.access_ttl.as_secs() as i64,
            verified: Mutex::new(LruCache::new(VERIFIED_CAPACITY)),
        }
    }

    /// Signs an access token for `user` in `session`.
    pub fn mint_access(
        &self,
        user: Uuid,
        session: Uuid,
        now: DateTime<Utc>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let iat = now.timestamp();
        let claims = AccessClaims {
            sub: user,
            sid: session,
            jti: Uuid::new_v4(),
            iat,
            exp: iat + self.access_ttl_secs,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            typ: ACCESS_TOKEN_TYPE.to_owned(),
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.access_encoding,
        )
    }

    /// Checks signature (HS256 only), `exp`, `nbf`, `iss`, `aud` and the type marker.
    pub fn verify_access(&self, token: &str) -> Result<AccessClaims, AccessTokenError> {
        self.verify_access_at(token, Utc::now().timestamp())
    }

    /// [`verify_access`](Self::verify_access) at `now` (Unix seconds) for remembered
    /// tokens; a token decoded afresh is checked against the system clock.
    fn verify_access_at(&self, token: &str, now: i64) -> Result<AccessClaims, AccessTokenError> {
        if token.len() > MAX_ACCESS_TOKEN_LEN {
            return Err(AccessTokenError::TooLong);
        }
        let remembered = self.verified().get(token).cloned();
        if let Some(claims) = remembered {
            // jsonwebtoken's rule: expired once `exp` is more than the leeway in the past.
            if claims.exp < now - LEEWAY_SECS as i64 {
                self.verified().remove(token);
                return Err(AccessTokenError::Expired);
            }
            return Ok(claims);
        }
        let data = jsonwebtoken::decode::<AccessClaims>(
            token,
            &self.access_decoding,
            &self.access_validation,
        )?;
        if data.claims.typ != ACCESS_TOKEN_TYPE {
            return Err(AccessTokenError::WrongType);
        }
        self.verified().insert(token.into(), data.claims.clone());
        Ok(data.claims)
    }

    fn verified(&self) -> std::sync::MutexGuard<'_, LruCache<Box<str>, AccessClaims>> {
        self.verified.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh refresh token for a new session.
    pub fn new_refresh(&self) -> RefreshToken {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        RefreshToken(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The token that replaces `token` when it is rotated; the same every time.
    pub fn successor(&self, token: &RefreshToken) -> RefreshToken {
        RefreshToken(URL_SAFE_NO_PAD.encode(self.mac(b"successor", token)))
    }

    /// What the database stores and looks tokens up by.
    pub fn hash(&self, token: &RefreshToken) -> String {
        self.mac(b"storage", token)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn mac(&self, purpose: &[u8], token: &RefreshToken) -> [u8; 32] {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.refresh_key).expect("HMAC accepts any key length");
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
    use std::time::Duration;

    fn keys() -> TokenKeys {
        TokenKeys::new(&Settings::defaults().tokens)
    }

    #[test]
    fn an_access_token_round_trips() {
        let keys = keys();
        let (user, session) = (Uuid::new_v4(), Uuid::new_v4());
        let token = keys.mint_access(user, session, Utc::now()).unwrap();
        let claims = keys.verify_access(&token).unwrap();
        assert_eq!((claims.sub, claims.sid), (user, session));
        assert_eq!(claims.typ, "access");
        assert_eq!(claims.exp - claims.iat, 15 * 60);
    }

    #[test]
    fn an_expired_access_token_is_refused() {
        let keys = keys();
        let an_hour_ago = Utc::now() - Duration::from_secs(3600);
        let token = keys
            .mint_access(Uuid::new_v4(), Uuid::new_v4(), an_hour_ago)
            .unwrap();
        assert!(keys.verify_access(&token).is_err());
    }

    #[test]
    fn a_remembered_token_is_refused_once_it_expires() {
        let keys = keys();
        let token = keys
            .mint_access(Uuid::new_v4(), Uuid::new_v4(), Utc::now())
            .unwrap();
        let claims = keys.verify_access(&token).unwrap();
        assert_eq!(keys.verified().len(), 1, "remembered after verifying");
        let just_valid = claims.exp + LEEWAY_SECS as i64;
        assert_eq!(keys.verify_access_at(&token, just_valid).unwrap(), claims);
        assert!(matches!(
            keys.verify_access_at(&token, just_valid + 1),
            Err(AccessTokenError::Expired)
        ));
        assert_eq!(keys.verified().len(), 0, "forgotten once expired");
        // A token that differs in one character is not the remembered one.
        let mut forged = token.clone().into_bytes();
        let i = forged.len() - 10; // inside the signature, a character of 6 full bits
        forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        keys.verify_access(&token).unwrap();
        assert!(keys.verify_access(&forged).is_err());
    }

    #[test]
    fn a_token_signed_with_another_key_is_refused() {
        let other = keys();
        let token = other
            .mint_access(Uuid::new_v4(), Uuid::new_v4(), Utc::now())
            .unwrap();
        assert!(keys().verify_access(&token).is_err());
    }

    /// Valid claims for `settings`, with the given type marker.
    fn claims(settings: &TokenSettings, typ: &str) -> AccessClaims {
        let now = Utc::now().timestamp();
        AccessClaims {
            sub: Uuid::new_v4(),
            sid: Uuid::new_v4(),
            jti: Uuid::new_v4(),
            iat: now,
            exp: now + 60,
            iss: settings.issuer.clone(),
            aud: settings.audience.clone(),
            typ: typ.into(),
        }
    }

    #[test]
    fn a_token_without_the_access_type_is_refused() {
        let settings = Settings::defaults().tokens;
        let keys = TokenKeys::new(&settings);
        let mut claims = claims(&settings, "refresh");
        let key = EncodingKey::from_secret(settings.access_secret.expose_secret().as_bytes());
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap();
        assert!(matches!(
            keys.verify_access(&token),
            Err(AccessTokenError::WrongType)
        ));
        claims.typ = "access".into();
        claims.aud = "someone-else".into();
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap();
        assert!(keys.verify_access(&token).is_err());
    }

    #[test]
    fn hs512_with_the_right_key_is_refused() {
        let settings = Settings::defaults().tokens;
        let keys = TokenKeys::new(&settings);
        let claims = claims(&settings, "access");
        let key = EncodingKey::from_secret(settings.access_secret.expose_secret().as_bytes());
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS512), &claims, &key).unwrap();
        assert!(keys.verify_access(&token).is_err());
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
