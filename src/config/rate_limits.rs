//! The rate-limits section: attempts per minute for the flows that guess passwords or
//! create accounts, mails per hour for the flows that send mail, and where the counts are
//! kept: in this process (`RATE_LIMIT_STORE=memory`) or in Redis, shared by every
//! instance (`redis`, with `REDIS_URL`).

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::ConfigError;
use super::parse::{self, Lookup, parse};

/// Attempts per minute, mails per hour; `0` turns a limit off.
#[derive(Clone, Debug)]
pub struct RateLimitSettings {
    pub login_per_ip: u32,
    pub login_per_account: u32,
    pub register_per_ip: u32,
    /// Mails per hour to one address, whether or not an account has it.
    pub mail_per_address: u32,
    /// Mails per hour asked for from one client IP.
    pub mail_per_ip: u32,
    /// Second-factor codes per minute tried for one account (`verifyMfa`, `confirmTotp`).
    pub mfa_per_account: u32,
    /// Where the budgets are counted.
    pub store: LimitStore,
}

/// Where the budgets are counted.
#[derive(Clone, Debug, Default)]
pub enum LimitStore {
    /// governor, in this process: each instance has budgets of its own.
    #[default]
    Memory,
    /// Redis, shared by every instance that names the same server and key prefix.
    Redis(RedisSettings),
}

#[derive(Clone, Debug)]
pub struct RedisSettings {
    /// `redis://[user:password@]host[:port][/db]` or `rediss://…`; a secret, since it may
    /// carry a password.
    pub url: SecretString,
    /// Every call to Redis (a connection, the script) gives up after this.
    pub timeout: Duration,
    /// The first part of every key this server writes, so that several deployments can
    /// share one Redis.
    pub key_prefix: String,
    /// What a request meets while Redis does not answer.
    pub on_failure: RedisFailure,
}

/// What a rate-limited request meets while Redis does not answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedisFailure {
    /// Each instance counts on its own (governor) until Redis answers again: with N
    /// instances up to N times the budgets are admitted meanwhile.
    Open,
    /// Every rate-limited operation is refused with `RATE_LIMITED` until Redis answers.
    Closed,
}

/// The bound on one Redis call when `REDIS_TIMEOUT` is not set.
const DEFAULT_REDIS_TIMEOUT: &str = "250ms";
/// Longer than this and a hung Redis would hold requests for too long to be a limit.
const MAX_REDIS_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_KEY_PREFIX: &str = "auth-server";
const MAX_KEY_PREFIX: usize = 64;

impl RateLimitSettings {
    pub(super) fn read(get: &impl Lookup) -> Result<Self, ConfigError> {
        Ok(Self {
            login_per_ip: parse(get, "RATE_LIMIT_LOGIN_PER_IP", 20u32)?,
            login_per_account: parse(get, "RATE_LIMIT_LOGIN_PER_ACCOUNT", 10u32)?,
            register_per_ip: parse(get, "RATE_LIMIT_REGISTER_PER_IP", 10u32)?,
            mail_per_address: parse(get, "RATE_LIMIT_MAIL_PER_ADDRESS", 5u32)?,
            mail_per_ip: parse(get, "RATE_LIMIT_MAIL_PER_IP", 30u32)?,
            mfa_per_account: parse(get, "RATE_LIMIT_MFA_PER_ACCOUNT", 5u32)?,
            store: read_store(get)?,
        })
    }
}

fn read_store(get: &impl Lookup) -> Result<LimitStore, ConfigError> {
    #[derive(Clone, Copy)]
    enum Kind {
        Memory,
        Redis,
    }
    let kind = parse::choice(
        get,
        "RATE_LIMIT_STORE",
        Kind::Memory,
        &[(Kind::Memory, &["memory"]), (Kind::Redis, &["redis"])],
    )?;
    let url = get("REDIS_URL").map(SecretString::from);
    match kind {
        Kind::Memory => Ok(LimitStore::Memory),
        Kind::Redis => {
            let Some(url) = url else {
                return Err(ConfigError::new(
                    "REDIS_URL",
                    "is required when RATE_LIMIT_STORE=redis; e.g. redis://127.0.0.1:6379",
                ));
            };
            check_redis_url(&url)?;
            let timeout = parse::duration(get, "REDIS_TIMEOUT", DEFAULT_REDIS_TIMEOUT)?;
            if timeout.is_zero() || timeout > MAX_REDIS_TIMEOUT {
                return Err(ConfigError::new(
                    "REDIS_TIMEOUT",
                    format!("must be more than 0 and at most {MAX_REDIS_TIMEOUT:?}"),
                ));
            }
            let key_prefix = get("REDIS_KEY_PREFIX").unwrap_or_else(|| DEFAULT_KEY_PREFIX.into());
            if key_prefix.len() > MAX_KEY_PREFIX
                || !key_prefix
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
            {
                return Err(ConfigError::new(
                    "REDIS_KEY_PREFIX",
                    format!(
                        "must be 1 to {MAX_KEY_PREFIX} characters of letters, digits and - _ . :"
                    ),
                ));
            }
            let on_failure = parse::choice(
                get,
                "RATE_LIMIT_REDIS_FAILURE",
                RedisFailure::Open,
                &[
                    (RedisFailure::Open, &["open"]),
                    (RedisFailure::Closed, &["closed"]),
                ],
            )?;
            Ok(LimitStore::Redis(RedisSettings {
                url,
                timeout,
                key_prefix,
                on_failure,
            }))
        }
    }
}

/// The URL's form only (nothing is connected to at start: Redis may come up later).
/// The error never repeats the URL, which may hold a password.
fn check_redis_url(url: &SecretString) -> Result<(), ConfigError> {
    let raw = url.expose_secret();
    if raw.starts_with("rediss://") {
        return Err(ConfigError::new(
            "REDIS_URL",
            "rediss:// (TLS) is not built in; reach Redis over a private network, a unix \
             socket (redis+unix:///path), or a local TLS tunnel",
        ));
    }
    if !["redis://", "redis+unix://", "unix://"]
        .iter()
        .any(|s| raw.starts_with(s))
    {
        return Err(ConfigError::new(
            "REDIS_URL",
            "must start with redis://, redis+unix:// or unix://",
        ));
    }
    redis::Client::open(raw).map(drop).map_err(|e| {
        ConfigError::new(
            "REDIS_URL",
            format!("is not a usable Redis URL ({})", e.category()),
        )
    })
}
