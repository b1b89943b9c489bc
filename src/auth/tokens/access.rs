//! The access JWT (typed `access`, signed by the ring's current key and naming it in `kid`)
//! and the cache of tokens that verified.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use hashlink::LruCache;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::signing::KeyRing;
use crate::config::TokenSettings;

/// The value of the `typ` claim every access token carries and no refresh token has.
pub const ACCESS_TOKEN_TYPE: &str = "access";
/// Longest bearer token worth decoding; ours are about 400 bytes.
const MAX_ACCESS_TOKEN_LEN: usize = 4096;
/// Accepted clock skew between instances when checking `exp`, `nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 5;
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
    /// How the session was authenticated (RFC 8176): `["pwd"]`, `["pwd","otp"]` after a
    /// TOTP code, `["pwd","mfa"]` after a recovery code. Tokens minted before the claim
    /// existed have none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
}

/// How a session was authenticated, as the `amr` claim and the session's `amr` column say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Amr {
    /// A password alone (or, for `resetPassword`, a mailed token and a new password).
    #[default]
    Password,
    /// A password and a TOTP code.
    PasswordOtp,
    /// A password and a recovery code: RFC 8176 has no value for one, so the generic
    /// `mfa` ("multiple-factor authentication") names it, distinct from `otp`.
    PasswordRecoveryCode,
    /// A passkey, with user verification (a PIN or biometric on the authenticator, which
    /// webauthn-rs requires): possession of a key (`hwk`) and a second factor in one
    /// (`mfa`).
    Passkey,
}

impl Amr {
    /// The claim's values.
    pub fn values(self) -> &'static [&'static str] {
        match self {
            Self::Password => &["pwd"],
            Self::PasswordOtp => &["pwd", "otp"],
            Self::PasswordRecoveryCode => &["pwd", "mfa"],
            Self::Passkey => &["hwk", "mfa"],
        }
    }

    /// The session column's text: the values, space-separated.
    pub fn stored(self) -> &'static str {
        match self {
            Self::Password => "pwd",
            Self::PasswordOtp => "pwd otp",
            Self::PasswordRecoveryCode => "pwd mfa",
            Self::Passkey => "hwk mfa",
        }
    }

    /// The value a session column holds; `None` (a session older than the column) and
    /// anything unknown are a password.
    pub fn from_stored(stored: Option<&str>) -> Self {
        match stored {
            Some("pwd otp") => Self::PasswordOtp,
            Some("pwd mfa") => Self::PasswordRecoveryCode,
            Some("hwk mfa") => Self::Passkey,
            _ => Self::Password,
        }
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
    #[error("no published key has this kid")]
    UnknownKey,
    #[error("the header's alg is not its key's")]
    WrongAlgorithm,
}

/// Why an access token could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error("no signing key is in service (see `auth-server keys list`)")]
    NoSigningKey,
    #[error(transparent)]
    Jwt(#[from] jsonwebtoken::errors::Error),
}

/// Signs and checks access tokens with the ring's keys, issuer and audience.
pub struct AccessKeys {
    ring: Arc<KeyRing>,
    /// The checks every token passes, made per algorithm (the key's, never the header's).
    validations: [(Algorithm, Validation); 4],
    issuer: String,
    audience: String,
    ttl_secs: i64,
    /// Tokens that verified, by their exact text: a client sends the same token on every
    /// request until it expires, and decoding it again (base64, two JSON parses, the HMAC)
    /// cost a measurable share of a `me` request (see `bench/FINDINGS.md`). Only the
    /// identical string hits, and a hit is still refused once `exp` has passed; the
    /// session is checked in the database regardless. Each entry holds the ring's
    /// generation it verified under: once a key leaves the ring, every token is checked
    /// afresh, so a withdrawn key admits nothing more, remembered or not.
    verified: Mutex<LruCache<Box<str>, (AccessClaims, u64)>>,
}

impl AccessKeys {
    pub fn new(settings: &TokenSettings, ring: Arc<KeyRing>) -> Self {
        let validation = |algorithm: Algorithm| {
            let mut validation = Validation::new(algorithm);
            validation.leeway = LEEWAY_SECS;
            // `exp` is judged against the server's clock (see `expired`), not the system's.
            validation.validate_exp = false;
            validation.validate_nbf = true;
            validation.set_issuer(&[&settings.issuer]);
            validation.set_audience(&[&settings.audience]);
            validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
            (algorithm, validation)
        };
        Self {
            ring,
            validations: [
                validation(Algorithm::ES256),
                validation(Algorithm::EdDSA),
                validation(Algorithm::RS256),
                validation(Algorithm::HS256),
            ],
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            ttl_secs: settings.access_ttl.as_secs() as i64,
            verified: Mutex::new(LruCache::new(VERIFIED_CAPACITY)),
        }
    }

    /// The keys tokens are signed and checked with.
    pub fn ring(&self) -> &Arc<KeyRing> {
        &self.ring
    }

    /// Signs an access token for `user` in a password `session` at `now`.
    pub fn mint(&self, user: Uuid, session: Uuid, now: DateTime<Utc>) -> Result<String, MintError> {
        self.mint_as(user, session, Amr::Password, now)
    }

    /// Signs an access token for `user` in `session`, authenticated by `amr`, with the key
    /// that signs at `now`.
    pub fn mint_as(
        &self,
        user: Uuid,
        session: Uuid,
        amr: Amr,
        now: DateTime<Utc>,
    ) -> Result<String, MintError> {
        let signer = self.ring.signer(now).ok_or(MintError::NoSigningKey)?;
        let iat = now.timestamp();
        let claims = AccessClaims {
            sub: user,
            sid: session,
            jti: Uuid::new_v4(),
            iat,
            exp: iat + self.ttl_secs,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            typ: ACCESS_TOKEN_TYPE.to_owned(),
            amr: amr.values().iter().map(|v| (*v).to_owned()).collect(),
        };
        Ok(signer.sign(&claims)?)
    }

    /// Checks the signature with the published key its `kid` names (in that key's
    /// algorithm only), `exp` at `now`, `nbf`, `iss`, `aud` and the type marker. A
    /// remembered token skips the decoding but not the `exp` check.
    pub fn verify(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<AccessClaims, AccessTokenError> {
        if token.len() > MAX_ACCESS_TOKEN_LEN {
            return Err(AccessTokenError::TooLong);
        }
        let at = now;
        let now = now.timestamp();
        let generation = self.ring.generation();
        let remembered = self.verified().get(token).cloned();
        match remembered {
            Some((claims, _)) if expired(claims.exp, now) => {
                self.verified().remove(token);
                return Err(AccessTokenError::Expired);
            }
            Some((claims, seen)) if seen == generation => return Ok(claims),
            // Verified under keys since changed: checked again below.
            Some(_) | None => {}
        }
        let header = jsonwebtoken::decode_header(token)?;
        let key = self
            .ring
            .verifier(header.kid.as_deref(), at)
            .ok_or(AccessTokenError::UnknownKey)?;
        let algorithm = key.algorithm.jwt();
        if header.alg != algorithm {
            return Err(AccessTokenError::WrongAlgorithm);
        }
        let validation = self
            .validations
            .iter()
            .find(|(a, _)| *a == algorithm)
            .map(|(_, v)| v)
            .ok_or(AccessTokenError::WrongAlgorithm)?;
        let data = jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, validation)?;
        if expired(data.claims.exp, now) {
            // As jsonwebtoken itself reported it when it judged `exp`.
            return Err(jsonwebtoken::errors::Error::from(ErrorKind::ExpiredSignature).into());
        }
        if data.claims.typ != ACCESS_TOKEN_TYPE {
            return Err(AccessTokenError::WrongType);
        }
        self.verified()
            .insert(token.into(), (data.claims.clone(), generation));
        Ok(data.claims)
    }

    fn verified(&self) -> std::sync::MutexGuard<'_, LruCache<Box<str>, (AccessClaims, u64)>> {
        self.verified.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// jsonwebtoken's rule: expired once `exp` is more than the leeway in the past.
fn expired(exp: i64, now: i64) -> bool {
    exp < now - LEEWAY_SECS as i64
}

#[cfg(test)]
mod tests;
