//! The tokens section: the signing algorithm and where its keys come from, the two JWT
//! secrets, issuer and audience, and the lifetimes.

use std::path::Path;
use std::time::Duration;

use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

use super::parse::{Lookup, duration, list, nonzero_duration};
use super::{ConfigError, Environment};
use crate::auth::tokens::access::LEEWAY_SECS;
use crate::auth::tokens::signing::{KeyPair, PublicKey, SigningAlgorithm};

/// Minimum length of a JWT secret in production, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

#[derive(Clone, Debug)]
pub struct TokenSettings {
    pub access_secret: SecretString,
    pub refresh_secret: SecretString,
    pub issuer: String,
    pub audience: String,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    /// How long a spent refresh token may be presented again without revoking its session.
    pub reuse_grace: Duration,
    /// `JWT_ALGORITHM`: what new stored keys are (ES256 by default), or HS256.
    pub algorithm: SigningAlgorithm,
    /// Where the access-token signing keys come from.
    pub key_source: KeySource,
    /// `JWKS_MAX_AGE`: how long verifiers may cache the JWKS (its `Cache-Control`).
    pub jwks_max_age: Duration,
    /// `SIGNING_KEYS_RELOAD`: how often every instance re-reads the stored keys.
    pub keys_reload: Duration,
    /// `PUBLIC_URL`: this server's external base URL, for `jwks_uri` in discovery.
    pub public_url: Option<url::Url>,
}

/// Where the access-token signing keys come from.
#[derive(Clone)]
pub enum KeySource {
    /// `JWT_ALGORITHM=HS256`: `JWT_ACCESS_SECRET`, shared with whoever verifies.
    Secret,
    /// `JWT_PRIVATE_KEY_FILE` signs; it and `JWT_PUBLIC_KEY_FILES` are published.
    Files {
        signing: KeyPair,
        published: Vec<PublicKey>,
    },
    /// The `signing_keys` table, private halves sealed under `KEY_ENCRYPTION_KEY`.
    Database { key_encryption_key: SecretString },
    /// Development with neither: one key made for this process (gone at restart).
    Ephemeral(KeyPair),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Secret => f.write_str("Secret"),
            Self::Files { signing, published } => f
                .debug_struct("Files")
                .field("signing", &signing.kid())
                .field("published", &published.len())
                .finish(),
            Self::Database { .. } => f.write_str("Database(***)"),
            Self::Ephemeral(pair) => write!(f, "Ephemeral({})", pair.kid()),
        }
    }
}

impl TokenSettings {
    /// Production refuses missing or short secrets; development generates or accepts
    /// them and says so in `warnings`.
    pub(super) fn read(
        get: &impl Lookup,
        environment: Environment,
        warnings: &mut Vec<String>,
    ) -> Result<Self, ConfigError> {
        // With asymmetric keys the access secret signs nothing: a missing one is made up
        // quietly (it must still differ from the refresh secret).
        let legacy = get("JWT_ALGORITHM")
            .is_some_and(|a| SigningAlgorithm::parse(&a) == Some(SigningAlgorithm::Hs256));
        let access_secret = match get("JWT_ACCESS_SECRET") {
            None if !legacy => random_secret(),
            _ => secret(get, "JWT_ACCESS_SECRET", environment, warnings)?,
        };
        let refresh_secret = secret(get, "JWT_REFRESH_SECRET", environment, warnings)?;
        if access_secret.expose_secret() == refresh_secret.expose_secret() {
            return Err(ConfigError::new(
                "JWT_REFRESH_SECRET",
                "must differ from JWT_ACCESS_SECRET",
            ));
        }
        let algorithm = match get("JWT_ALGORITHM") {
            None => SigningAlgorithm::Es256,
            Some(raw) => SigningAlgorithm::parse(&raw).ok_or_else(|| {
                ConfigError::new("JWT_ALGORITHM", "must be ES256, EdDSA, RS256 or HS256")
            })?,
        };
        let key_source = key_source(get, algorithm, environment, warnings)?;
        let public_url = match get("PUBLIC_URL") {
            None => None,
            Some(raw) => Some(public_url(&raw)?),
        };
        Ok(Self {
            algorithm,
            key_source,
            jwks_max_age: duration(get, "JWKS_MAX_AGE", "5m")?,
            keys_reload: nonzero_duration(get, "SIGNING_KEYS_RELOAD", "1m")?,
            public_url,
            access_secret,
            refresh_secret,
            issuer: get("JWT_ISSUER").unwrap_or_else(|| "auth-server".to_owned()),
            audience: get("JWT_AUDIENCE").unwrap_or_else(|| "auth-server".to_owned()),
            access_ttl: nonzero_duration(get, "ACCESS_TOKEN_TTL", "15m")?,
            refresh_ttl: nonzero_duration(get, "REFRESH_TOKEN_TTL", "7d")?,
            reuse_grace: duration(get, "REFRESH_REUSE_GRACE", "10s")?,
        })
    }
}

impl TokenSettings {
    /// How long after `keys rotate` a new key starts signing: every instance has re-read
    /// the table, and every verifier's cached JWKS has expired, by then.
    pub fn rotation_lead(&self) -> Duration {
        self.keys_reload + self.jwks_max_age
    }

    /// How long after it is signed an access token can still verify: its lifetime, the
    /// leeway, and one second more because `iat` and `exp` are whole seconds (a token
    /// signed at 10.9 s says `iat` 10 and is judged by whole seconds too).
    pub fn token_lifetime(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.access_ttl + Duration::from_secs(LEEWAY_SECS + 1))
            .unwrap_or(chrono::Duration::MAX)
    }
}

fn key_source(
    get: &impl Lookup,
    algorithm: SigningAlgorithm,
    environment: Environment,
    warnings: &mut Vec<String>,
) -> Result<KeySource, ConfigError> {
    if algorithm == SigningAlgorithm::Hs256 {
        return Ok(KeySource::Secret);
    }
    if let Some(path) = get("JWT_PRIVATE_KEY_FILE") {
        let signing = KeyPair::from_pem(&read_pem("JWT_PRIVATE_KEY_FILE", &path)?)
            .map_err(|e| ConfigError::new("JWT_PRIVATE_KEY_FILE", format!("{path}: {e}")))?;
        if signing.algorithm() != algorithm {
            return Err(ConfigError::new(
                "JWT_PRIVATE_KEY_FILE",
                format!(
                    "{path} holds an {} key but JWT_ALGORITHM is {algorithm}",
                    signing.algorithm()
                ),
            ));
        }
        let mut published = Vec::new();
        for path in list(get("JWT_PUBLIC_KEY_FILES")) {
            let key = PublicKey::from_pem(&read_pem("JWT_PUBLIC_KEY_FILES", &path)?)
                .map_err(|e| ConfigError::new("JWT_PUBLIC_KEY_FILES", format!("{path}: {e}")))?;
            published.push(key);
        }
        return Ok(KeySource::Files { signing, published });
    }
    if get("JWT_PUBLIC_KEY_FILES").is_some() {
        return Err(ConfigError::new(
            "JWT_PUBLIC_KEY_FILES",
            "needs JWT_PRIVATE_KEY_FILE (stored keys are published from the database)",
        ));
    }
    let production = environment == Environment::Production;
    match get("KEY_ENCRYPTION_KEY") {
        Some(_) => Ok(KeySource::Database {
            key_encryption_key: secret(get, "KEY_ENCRYPTION_KEY", environment, warnings)?,
        }),
        None if production => Err(ConfigError::new(
            "KEY_ENCRYPTION_KEY",
            format!(
                "is required when APP_ENV=production and JWT_ALGORITHM is {algorithm}: it seals                  the signing keys in the database (or give JWT_PRIVATE_KEY_FILE;                  JWT_ALGORITHM=HS256 keeps the legacy shared secret)"
            ),
        )),
        None => {
            warnings.push(format!(
                "KEY_ENCRYPTION_KEY is not set; generated an {algorithm} signing key for this                  process only (tokens will not survive a restart, and other instances cannot                  verify them)"
            ));
            KeyPair::generate(algorithm)
                .map(KeySource::Ephemeral)
                .map_err(|e| ConfigError::new("JWT_ALGORITHM", e.to_string()))
        }
    }
}

/// The PEM at `path`, bounded (a key file is a few KiB).
fn read_pem(var: &'static str, path: &str) -> Result<Vec<u8>, ConfigError> {
    const MAX_PEM_BYTES: u64 = 64 * 1024;
    let too_big = std::fs::metadata(Path::new(path)).is_ok_and(|m| m.len() > MAX_PEM_BYTES);
    if too_big {
        return Err(ConfigError::new(
            var,
            format!("{path} is larger than {MAX_PEM_BYTES} bytes: not a key"),
        ));
    }
    std::fs::read(path).map_err(|e| ConfigError::new(var, format!("{path}: {e}")))
}

fn public_url(raw: &str) -> Result<url::Url, ConfigError> {
    let url = url::Url::parse(raw)
        .map_err(|e| ConfigError::new("PUBLIC_URL", format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host().is_none()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(ConfigError::new(
            "PUBLIC_URL",
            "must be an http(s) URL without query or fragment, e.g. https://auth.example.com",
        ));
    }
    Ok(url)
}

fn secret(
    get: &impl Lookup,
    var: &'static str,
    environment: Environment,
    warnings: &mut Vec<String>,
) -> Result<SecretString, ConfigError> {
    let production = environment == Environment::Production;
    match get(var) {
        Some(value) if value.len() >= MIN_SECRET_BYTES => Ok(SecretString::from(value)),
        Some(_) if production => Err(ConfigError::new(
            var,
            format!("must be at least {MIN_SECRET_BYTES} bytes in production"),
        )),
        None if production => Err(ConfigError::new(var, "is required when APP_ENV=production")),
        Some(value) => {
            warnings.push(format!(
                "{var} is shorter than {MIN_SECRET_BYTES} bytes; acceptable only in development"
            ));
            Ok(SecretString::from(value))
        }
        None => {
            warnings.push(format!(
                "{var} is not set; generated a random one (tokens will not survive a restart)"
            ));
            Ok(random_secret())
        }
    }
}

/// 64 random bytes, hex-encoded.
fn random_secret() -> SecretString {
    let mut bytes = [0u8; 64];
    rand::rng().fill_bytes(&mut bytes);
    SecretString::from(crate::hex::lower(&bytes))
}
