//! Settings: the one place that reads configuration (environment and `.env`).
//!
//! One file per section, each owning its struct and the `read` that takes its variables:
//! `database`, `tokens`, `passwords`, `rate_limits`, `http`, `graphql`, `mail`, `accounts`,
//! `passkeys`. A new
//! section (signing keys, Redis) gets a file of its own the same way, a field in
//! `Settings` and one line in `from_lookup`. This file keeps what spans sections: the
//! environment, the log format, the order sections are read in and the checks between
//! them. The readers they share (numbers, switches, durations, lists) are in `parse.rs`.

mod accounts;
mod database;
mod graphql;
mod http;
mod mail;
mod parse;
mod passkeys;
mod passwords;
mod rate_limits;
mod tokens;

use std::net::{IpAddr, SocketAddr};

pub use accounts::{AccountSettings, MAX_RESET_TTL, MAX_VERIFICATION_TTL};
pub use database::DatabaseSettings;
pub use graphql::{DEEPEST_PARSED_SELECTION, GraphqlSettings};
pub use http::HttpSettings;
pub use mail::MailSettings;
pub use parse::parse_duration;
pub use passkeys::PasskeySettings;
pub use passwords::{HashPriority, PasswordSettings};
pub use rate_limits::{LimitStore, RateLimitSettings, RedisFailure, RedisSettings};
pub use tokens::{KeySource, MIN_SECRET_BYTES, TokenSettings};

/// Everything the server can be configured with. Built once at start-up.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `development` (default) or `production`; production refuses weak secrets.
    pub environment: Environment,
    /// Address to bind; `127.0.0.1` by default.
    pub host: IpAddr,
    /// Port to bind; `0` picks a free one (tests do).
    pub port: u16,
    /// Where `GET /metrics` (Prometheus text) is served, on a listener of its own; `None`
    /// (the default) records no metrics at all. Port `0` picks a free one (tests do).
    pub metrics_addr: Option<SocketAddr>,
    pub database: DatabaseSettings,
    pub tokens: TokenSettings,
    pub passwords: PasswordSettings,
    pub rate_limits: RateLimitSettings,
    pub http: HttpSettings,
    pub graphql: GraphqlSettings,
    pub mail: MailSettings,
    pub accounts: AccountSettings,
    /// The WebAuthn relying party (`WEBAUTHN_RP_ID`, `WEBAUTHN_ORIGINS`, `WEBAUTHN_RP_NAME`);
    /// `None` when passkeys are off.
    pub passkeys: Option<PasskeySettings>,
    /// `pretty` (default) or `json` log lines.
    pub log_format: LogFormat,
    /// Things worth a warning at start-up (generated secrets, ...); logged once tracing runs.
    pub warnings: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

impl ConfigError {
    fn new(var: &'static str, message: impl Into<String>) -> Self {
        Self {
            var,
            message: message.into(),
        }
    }
}

impl Settings {
    /// Reads `.env` (if present) and then the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        // A missing .env is normal; a malformed one is an error worth stopping for.
        match dotenvy::dotenv() {
            Ok(_) => {}
            Err(e) if e.not_found() => {}
            Err(e) => return Err(ConfigError::new(".env", e.to_string())),
        }
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Builds settings from any key lookup; unset keys take their defaults.
    ///
    /// The first unusable variable is the error. Secrets come first, so a production
    /// start without them names them before anything else.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |key: &str| {
            get(key)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        use Environment::{Development, Production};
        let environment = parse::choice(
            &get,
            "APP_ENV",
            Development,
            &[
                (Development, &["development", "dev", "test"]),
                (Production, &["production", "prod"]),
            ],
        )?;
        let mut warnings = Vec::new();
        let tokens = TokenSettings::read(&get, environment, &mut warnings)?;
        let passwords = PasswordSettings::read(&get)?;
        let http = HttpSettings::read(&get, &mut warnings)?;
        let host = parse::parse(&get, "HOST", IpAddr::from([127, 0, 0, 1]))?;
        let port = parse::parse(&get, "PORT", 4000u16)?;
        let metrics_addr = parse::optional(&get, "METRICS_ADDR")?;
        let database = DatabaseSettings::read(&get)?;
        let rate_limits = RateLimitSettings::read(&get)?;
        // Tools for people exploring the API (GraphiQL, introspection) are on by default
        // in development only.
        let graphql = GraphqlSettings::read(&get, environment == Development, &mut warnings)?;
        let mail = MailSettings::read(&get, environment, &mut warnings)?;
        let accounts = AccountSettings::read(&get)?;
        let passkeys = PasskeySettings::read(&get, &mail.app_url, &mut warnings)?;
        let log_format = parse::choice(
            &get,
            "LOG_FORMAT",
            LogFormat::Pretty,
            &[
                (LogFormat::Pretty, &["pretty", "text"]),
                (LogFormat::Json, &["json"]),
            ],
        )?;

        if graphql.graphiql && !graphql.introspection {
            warnings.push(
                "GRAPHIQL_ENABLED is on but GRAPHQL_INTROSPECTION is off: GraphiQL cannot load \
                 the schema (no documentation explorer, no completion)"
                    .to_owned(),
            );
        }
        Ok(Settings {
            environment,
            host,
            port,
            metrics_addr,
            database,
            tokens,
            passwords,
            rate_limits,
            http,
            graphql,
            mail,
            accounts,
            passkeys,
            log_format,
            warnings,
        })
    }

    /// Development defaults with no environment read: what tests start from.
    pub fn defaults() -> Self {
        Self::from_lookup(|_| None).expect("the built-in defaults are valid")
    }
}

#[cfg(test)]
mod tests;
