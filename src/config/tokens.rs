//! The tokens section: the two JWT secrets, issuer and audience, and the lifetimes.

use std::time::Duration;

use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

use super::parse::{Lookup, duration, nonzero_duration};
use super::{ConfigError, Environment};

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
}

impl TokenSettings {
    /// Production refuses missing or short secrets; development generates or accepts
    /// them and says so in `warnings`.
    pub(super) fn read(
        get: &impl Lookup,
        environment: Environment,
        warnings: &mut Vec<String>,
    ) -> Result<Self, ConfigError> {
        let access_secret = secret(get, "JWT_ACCESS_SECRET", environment, warnings)?;
        let refresh_secret = secret(get, "JWT_REFRESH_SECRET", environment, warnings)?;
        if access_secret.expose_secret() == refresh_secret.expose_secret() {
            return Err(ConfigError::new(
                "JWT_REFRESH_SECRET",
                "must differ from JWT_ACCESS_SECRET",
            ));
        }
        Ok(Self {
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
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    SecretString::from(hex)
}
