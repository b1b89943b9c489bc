//! Settings: the one place that reads configuration (environment and `.env`).

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

/// Minimum length of a JWT secret in production, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// Everything the server can be configured with. Built once at start-up.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `development` (default) or `production`; production refuses weak secrets.
    pub environment: Environment,
    /// Address to bind; `127.0.0.1` by default.
    pub host: IpAddr,
    /// Port to bind; `0` picks a free one (tests do).
    pub port: u16,
    pub database: DatabaseSettings,
    pub tokens: TokenSettings,
    pub passwords: PasswordSettings,
    pub rate_limits: RateLimitSettings,
    pub http: HttpSettings,
    pub graphql: GraphqlSettings,
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

#[derive(Clone, Debug)]
pub struct DatabaseSettings {
    /// May hold a password, hence secret.
    pub url: SecretString,
    /// Upper bound of pooled connections.
    pub max_connections: u32,
    /// How long a request waits for a pooled connection before failing.
    pub acquire_timeout: Duration,
    /// Longest a statement may run (PostgreSQL `statement_timeout`, MariaDB
    /// `max_statement_time`, MySQL `max_execution_time`, SQLite busy wait).
    pub statement_timeout: Duration,
    /// Longest an instance waits for another one's migrations (the cross-process
    /// migration lock, src/migrate.rs) before it gives up with an error.
    pub migration_lock_timeout: Duration,
}

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

#[derive(Clone, Debug)]
pub struct PasswordSettings {
    pub bcrypt_cost: u32,
    /// Threads that hash and verify passwords at once.
    pub hash_workers: usize,
    /// Hash jobs allowed to wait for a worker; beyond it requests are shed.
    pub hash_queue: usize,
    /// CPU priority of the hashing threads against the threads that serve requests.
    pub hash_priority: HashPriority,
}

/// `PASSWORD_HASH_PRIORITY`: how the hashing threads are scheduled (Linux; elsewhere they
/// run at normal priority).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashPriority {
    /// `SCHED_IDLE`: they run only on cycles nothing else wants, and a request waking up
    /// preempts them at once. The default: a login flood never delays other requests.
    Idle,
    /// nice +10: they yield most of the CPU, but a waking request may wait for the end
    /// of their time slice.
    Low,
    /// The same priority as requests.
    Normal,
}

/// Attempts per minute; `0` turns a limit off.
#[derive(Clone, Debug)]
pub struct RateLimitSettings {
    pub login_per_ip: u32,
    pub login_per_account: u32,
    pub register_per_ip: u32,
}

#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// Origins allowed by CORS; `*` allows any; empty allows none.
    pub cors_allowed_origins: Vec<String>,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// `Strict-Transport-Security` max-age; off when `None`.
    pub hsts_max_age: Option<Duration>,
    /// Time a client has to send a complete request head: from the connection's start, or
    /// from the first byte of a later request on a kept-alive connection. Bounds silent and
    /// trickling ("slowloris") connections.
    pub header_read_timeout: Duration,
    /// How long a kept-alive connection may wait idle for its next request; `None` turns
    /// keep-alive off. Longer than a load balancer's idle timeout, so the balancer closes
    /// first and never sends a request into a closing connection.
    pub keep_alive_timeout: Option<Duration>,
    /// Most client connections open at once; at the bound the server stops accepting
    /// until one closes. Lowered at start-up to what the descriptor limit allows.
    pub max_connections: usize,
}

#[derive(Clone, Debug)]
pub struct GraphqlSettings {
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_batch: usize,
    /// Serve the GraphiQL playground on `GET /graphql`: a convenience for people exploring
    /// the API, so on by default in development only.
    pub graphiql: bool,
    /// Answer introspection (`__schema`, `__type`): on by default in development only;
    /// codegen reads the committed `schema.graphql`, so production needs no live schema.
    pub introspection: bool,
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
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |key: &str| {
            get(key)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        let environment = match get("APP_ENV").as_deref() {
            None | Some("development") | Some("dev") | Some("test") => Environment::Development,
            Some("production") | Some("prod") => Environment::Production,
            Some(other) => {
                return Err(ConfigError::new(
                    "APP_ENV",
                    format!("expected development or production, got {other:?}"),
                ));
            }
        };

        let mut warnings = Vec::new();
        let mut secret = |var: &'static str| -> Result<SecretString, ConfigError> {
            match get(var) {
                Some(value) if value.len() >= MIN_SECRET_BYTES => Ok(SecretString::from(value)),
                Some(_) if environment == Environment::Production => Err(ConfigError::new(
                    var,
                    format!("must be at least {MIN_SECRET_BYTES} bytes in production"),
                )),
                None if environment == Environment::Production => {
                    Err(ConfigError::new(var, "is required when APP_ENV=production"))
                }
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
        };

        let access_secret = secret("JWT_ACCESS_SECRET")?;
        let refresh_secret = secret("JWT_REFRESH_SECRET")?;
        if access_secret.expose_secret() == refresh_secret.expose_secret() {
            return Err(ConfigError::new(
                "JWT_REFRESH_SECRET",
                "must differ from JWT_ACCESS_SECRET",
            ));
        }

        // Tools for people exploring the API (GraphiQL, introspection) are on by default
        // in development only.
        let in_development = environment == Environment::Development;

        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());

        let bcrypt_cost = parse(&get, "BCRYPT_COST", 12u32)?;
        if !(4..=31).contains(&bcrypt_cost) {
            return Err(ConfigError::new("BCRYPT_COST", "must be between 4 and 31"));
        }

        let trusted_proxies: Vec<IpNet> = list(get("TRUSTED_PROXIES"))
            .iter()
            .map(|p| parse_proxy(p))
            .collect::<Result<_, _>>()?;
        for net in trusted_proxies.iter().filter(|net| net.prefix_len() == 0) {
            warnings.push(format!(
                "TRUSTED_PROXIES contains {net}, which holds every address: any client can \
                 choose its own address with X-Forwarded-For and escape the per-IP rate \
                 limits; list only your load balancers"
            ));
        }

        let mut settings = Settings {
            environment,
            host: parse(&get, "HOST", IpAddr::from([127, 0, 0, 1]))?,
            port: parse(&get, "PORT", 4000u16)?,
            database: DatabaseSettings {
                url: SecretString::from(
                    get("DATABASE_URL").unwrap_or_else(|| "sqlite://auth.db?mode=rwc".to_owned()),
                ),
                max_connections: positive(&get, "DATABASE_MAX_CONNECTIONS", 10u32)?,
                acquire_timeout: nonzero_duration(&get, "DATABASE_ACQUIRE_TIMEOUT", "5s")?,
                statement_timeout: nonzero_duration(&get, "DATABASE_STATEMENT_TIMEOUT", "5s")?,
                migration_lock_timeout: nonzero_duration(
                    &get,
                    "DATABASE_MIGRATION_LOCK_TIMEOUT",
                    "5m",
                )?,
            },
            tokens: TokenSettings {
                access_secret,
                refresh_secret,
                issuer: get("JWT_ISSUER").unwrap_or_else(|| "auth-server".to_owned()),
                audience: get("JWT_AUDIENCE").unwrap_or_else(|| "auth-server".to_owned()),
                access_ttl: nonzero_duration(&get, "ACCESS_TOKEN_TTL", "15m")?,
                refresh_ttl: nonzero_duration(&get, "REFRESH_TOKEN_TTL", "7d")?,
                reuse_grace: duration(&get, "REFRESH_REUSE_GRACE", "10s")?,
            },
            passwords: PasswordSettings {
                bcrypt_cost,
                hash_workers: positive(&get, "PASSWORD_HASH_WORKERS", cores)?,
                hash_queue: parse(&get, "PASSWORD_HASH_QUEUE", 64usize)?,
                hash_priority: match get("PASSWORD_HASH_PRIORITY").as_deref() {
                    None | Some("idle") => HashPriority::Idle,
                    Some("low") => HashPriority::Low,
                    Some("normal") => HashPriority::Normal,
                    Some(other) => {
                        return Err(ConfigError::new(
                            "PASSWORD_HASH_PRIORITY",
                            format!("expected idle, low or normal, got {other:?}"),
                        ));
                    }
                },
            },
            rate_limits: RateLimitSettings {
                login_per_ip: parse(&get, "RATE_LIMIT_LOGIN_PER_IP", 20u32)?,
                login_per_account: parse(&get, "RATE_LIMIT_LOGIN_PER_ACCOUNT", 10u32)?,
                register_per_ip: parse(&get, "RATE_LIMIT_REGISTER_PER_IP", 10u32)?,
            },
            http: HttpSettings {
                cors_allowed_origins: list(get("CORS_ALLOWED_ORIGINS")),
                trusted_proxies,
                max_body_bytes: positive(&get, "MAX_BODY_BYTES", 64 * 1024usize)?,
                hsts_max_age: match duration(&get, "HSTS_MAX_AGE", "0s")? {
                    d if d.is_zero() => None,
                    d => Some(d),
                },
                header_read_timeout: nonzero_duration(&get, "HTTP_HEADER_READ_TIMEOUT", "10s")?,
                keep_alive_timeout: match duration(&get, "HTTP_KEEP_ALIVE_TIMEOUT", "75s")? {
                    d if d.is_zero() => None,
                    d => Some(d),
                },
                max_connections: positive(&get, "HTTP_MAX_CONNECTIONS", 4096usize)?,
            },
            graphql: GraphqlSettings {
                max_depth: positive(&get, "GRAPHQL_MAX_DEPTH", 16usize)?,
                max_complexity: positive(&get, "GRAPHQL_MAX_COMPLEXITY", 500usize)?,
                max_batch: positive(&get, "GRAPHQL_MAX_BATCH", 10usize)?,
                graphiql: boolean(&get, "GRAPHIQL_ENABLED", in_development)?,
                introspection: boolean(&get, "GRAPHQL_INTROSPECTION", in_development)?,
            },
            log_format: match get("LOG_FORMAT").as_deref() {
                None | Some("pretty") | Some("text") => LogFormat::Pretty,
                Some("json") => LogFormat::Json,
                Some(other) => {
                    return Err(ConfigError::new(
                        "LOG_FORMAT",
                        format!("expected pretty or json, got {other:?}"),
                    ));
                }
            },
            warnings,
        };
        if settings.graphql.graphiql && !settings.graphql.introspection {
            settings.warnings.push(
                "GRAPHIQL_ENABLED is on but GRAPHQL_INTROSPECTION is off: GraphiQL cannot load \
                 the schema (no documentation explorer, no completion)"
                    .to_owned(),
            );
        }
        Ok(settings)
    }

    /// Development defaults with no environment read: what tests start from.
    pub fn defaults() -> Self {
        Self::from_lookup(|_| None).expect("the built-in defaults are valid")
    }
}

/// 64 random bytes, hex-encoded.
fn random_secret() -> SecretString {
    let mut bytes = [0u8; 64];
    rand::rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    SecretString::from(hex)
}

fn parse<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: T,
) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match get(var) {
        None => Ok(default),
        Some(raw) => raw
            .parse()
            .map_err(|e| ConfigError::new(var, format!("{raw:?}: {e}"))),
    }
}

fn positive<T>(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: T,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + Default + PartialEq,
    T::Err: std::fmt::Display,
{
    let value = parse(get, var, default)?;
    if value == T::default() {
        return Err(ConfigError::new(var, "must be greater than zero"));
    }
    Ok(value)
}

fn boolean(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    match get(var).map(|v| v.to_ascii_lowercase()).as_deref() {
        None => Ok(default),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some("0" | "false" | "no" | "off") => Ok(false),
        Some(other) => Err(ConfigError::new(
            var,
            format!("expected true or false, got {other:?}"),
        )),
    }
}

/// Accepts `90`, `90s`, `15m`, `7d`, `1h 30m`: a bare number is seconds.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    if let Ok(secs) = raw.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(raw).map_err(|e| e.to_string())
}

fn duration(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: &str,
) -> Result<Duration, ConfigError> {
    let raw = get(var).unwrap_or_else(|| default.to_owned());
    let value = parse_duration(&raw).map_err(|e| ConfigError::new(var, format!("{raw:?}: {e}")))?;
    // Token lifetimes are sent as 32-bit seconds (`expiresIn: Int!`).
    if value.as_secs() > i32::MAX as u64 {
        return Err(ConfigError::new(var, "is too long"));
    }
    Ok(value)
}

fn nonzero_duration(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: &str,
) -> Result<Duration, ConfigError> {
    let value = duration(get, var, default)?;
    if value.as_secs() == 0 {
        return Err(ConfigError::new(var, "must be at least one second"));
    }
    Ok(value)
}

fn list(raw: Option<String>) -> Vec<String> {
    raw.map(|r| {
        r.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

fn parse_proxy(raw: &str) -> Result<IpNet, ConfigError> {
    raw.parse::<IpNet>()
        .or_else(|_| raw.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| {
            ConfigError::new(
                "TRUSTED_PROXIES",
                format!("{raw:?} is not an IP address or CIDR"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_match_the_contract() {
        let s = Settings::defaults();
        assert_eq!(s.port, 4000);
        assert_eq!(s.host.to_string(), "127.0.0.1");
        assert_eq!(s.tokens.access_ttl, Duration::from_secs(15 * 60));
        assert_eq!(s.tokens.refresh_ttl, Duration::from_secs(7 * 24 * 3600));
        assert_eq!(s.tokens.reuse_grace, Duration::from_secs(10));
        assert_eq!(s.passwords.bcrypt_cost, 12);
        assert_eq!(s.database.url.expose_secret(), "sqlite://auth.db?mode=rwc");
        assert!(s.tokens.access_secret.expose_secret().len() >= MIN_SECRET_BYTES);
    }

    #[test]
    fn production_refuses_missing_or_short_secrets() {
        let err = from(&[("APP_ENV", "production")]).unwrap_err();
        assert_eq!(err.var, "JWT_ACCESS_SECRET");
        let err = from(&[
            ("APP_ENV", "production"),
            ("JWT_ACCESS_SECRET", "short"),
            ("JWT_REFRESH_SECRET", &"r".repeat(32)),
        ])
        .unwrap_err();
        assert_eq!(err.var, "JWT_ACCESS_SECRET");
        let ok = from(&[
            ("APP_ENV", "production"),
            ("JWT_ACCESS_SECRET", &"a".repeat(32)),
            ("JWT_REFRESH_SECRET", &"r".repeat(32)),
        ]);
        assert!(ok.is_ok());
    }

    #[test]
    fn hash_priority_defaults_to_idle_and_refuses_unknown_values() {
        assert_eq!(
            from(&[]).unwrap().passwords.hash_priority,
            HashPriority::Idle
        );
        let low = from(&[("PASSWORD_HASH_PRIORITY", "low")]).unwrap();
        assert_eq!(low.passwords.hash_priority, HashPriority::Low);
        let err = from(&[("PASSWORD_HASH_PRIORITY", "high")]).unwrap_err();
        assert_eq!(err.var, "PASSWORD_HASH_PRIORITY");
    }

    #[test]
    fn identical_secrets_are_refused() {
        let same = "s".repeat(40);
        let err = from(&[("JWT_ACCESS_SECRET", &same), ("JWT_REFRESH_SECRET", &same)]).unwrap_err();
        assert_eq!(err.var, "JWT_REFRESH_SECRET");
    }

    #[test]
    fn durations_accept_units_and_bare_seconds() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604_800));
        assert!(parse_duration("soon").is_err());
        assert_eq!(
            from(&[("ACCESS_TOKEN_TTL", "0")]).unwrap_err().var,
            "ACCESS_TOKEN_TTL"
        );
    }

    #[test]
    fn bad_values_name_their_variable() {
        assert_eq!(from(&[("PORT", "http")]).unwrap_err().var, "PORT");
        assert_eq!(
            from(&[("BCRYPT_COST", "3")]).unwrap_err().var,
            "BCRYPT_COST"
        );
        assert_eq!(
            from(&[("TRUSTED_PROXIES", "10.0.0.0/8, nope")])
                .unwrap_err()
                .var,
            "TRUSTED_PROXIES"
        );
        assert_eq!(from(&[("APP_ENV", "staging")]).unwrap_err().var, "APP_ENV");
        assert_eq!(
            from(&[("GRAPHIQL_ENABLED", "maybe")]).unwrap_err().var,
            "GRAPHIQL_ENABLED"
        );
    }

    /// Production settings with valid secrets and `extra` on top.
    fn production(extra: &[(&str, &str)]) -> Settings {
        let (access, refresh) = ("a".repeat(32), "r".repeat(32));
        let mut pairs = vec![
            ("APP_ENV", "production"),
            ("JWT_ACCESS_SECRET", access.as_str()),
            ("JWT_REFRESH_SECRET", refresh.as_str()),
        ];
        pairs.extend_from_slice(extra);
        from(&pairs).unwrap()
    }

    #[test]
    fn graphiql_and_introspection_are_on_in_development_and_off_in_production() {
        let dev = from(&[]).unwrap();
        assert!(dev.graphql.graphiql);
        assert!(dev.graphql.introspection);
        let prod = production(&[]);
        assert!(
            !prod.graphql.graphiql,
            "GraphiQL on by default in production"
        );
        assert!(
            !prod.graphql.introspection,
            "introspection on by default in production"
        );
        assert!(prod.warnings.is_empty(), "{:?}", prod.warnings);
    }

    #[test]
    fn graphiql_and_introspection_can_be_switched_either_way_in_either_environment() {
        for (value, on) in [("true", true), ("on", true), ("1", true), ("false", false)] {
            let prod = production(&[
                ("GRAPHIQL_ENABLED", value),
                ("GRAPHQL_INTROSPECTION", value),
            ]);
            assert_eq!(
                (prod.graphql.graphiql, prod.graphql.introspection),
                (on, on)
            );
            let dev = from(&[
                ("GRAPHIQL_ENABLED", value),
                ("GRAPHQL_INTROSPECTION", value),
            ])
            .unwrap();
            assert_eq!((dev.graphql.graphiql, dev.graphql.introspection), (on, on));
        }
        // Each switch is independent of the other.
        let only_introspection = production(&[("GRAPHQL_INTROSPECTION", "yes")]);
        assert!(!only_introspection.graphql.graphiql);
        assert!(only_introspection.graphql.introspection);
        assert_eq!(
            from(&[("GRAPHQL_INTROSPECTION", "sometimes")])
                .unwrap_err()
                .var,
            "GRAPHQL_INTROSPECTION"
        );
    }

    #[test]
    fn graphiql_without_introspection_is_allowed_with_a_warning() {
        let s = production(&[("GRAPHIQL_ENABLED", "true")]);
        assert!(s.graphql.graphiql && !s.graphql.introspection);
        assert!(
            s.warnings
                .iter()
                .any(|w| w.contains("GRAPHIQL_ENABLED") && w.contains("GRAPHQL_INTROSPECTION")),
            "{:?}",
            s.warnings
        );
    }

    #[test]
    fn a_catch_all_trusted_proxy_range_is_warned_about() {
        for catch_all in ["0.0.0.0/0", "::/0"] {
            let s = from(&[("TRUSTED_PROXIES", &format!("10.0.0.0/8, {catch_all}"))]).unwrap();
            let warned: Vec<_> = s
                .warnings
                .iter()
                .filter(|w| w.starts_with("TRUSTED_PROXIES"))
                .collect();
            assert_eq!(warned.len(), 1, "{catch_all}: {:?}", s.warnings);
            assert!(warned[0].contains(catch_all), "{}", warned[0]);
        }
        let s = from(&[("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1, fd00::/8")]).unwrap();
        assert!(
            !s.warnings.iter().any(|w| w.starts_with("TRUSTED_PROXIES")),
            "{:?}",
            s.warnings
        );
    }

    #[test]
    fn connection_limits_have_documented_defaults_and_refuse_bad_values() {
        let s = from(&[]).unwrap();
        assert_eq!(s.http.header_read_timeout, Duration::from_secs(10));
        assert_eq!(s.http.keep_alive_timeout, Some(Duration::from_secs(75)));
        assert_eq!(s.http.max_connections, 4096);
        assert_eq!(s.database.migration_lock_timeout, Duration::from_secs(300));
        let s = from(&[
            ("HTTP_HEADER_READ_TIMEOUT", "3s"),
            ("HTTP_KEEP_ALIVE_TIMEOUT", "0"),
            ("HTTP_MAX_CONNECTIONS", "100"),
            ("DATABASE_MIGRATION_LOCK_TIMEOUT", "1m"),
        ])
        .unwrap();
        assert_eq!(s.http.header_read_timeout, Duration::from_secs(3));
        assert_eq!(s.http.keep_alive_timeout, None, "0 turns keep-alive off");
        assert_eq!(s.http.max_connections, 100);
        assert_eq!(s.database.migration_lock_timeout, Duration::from_secs(60));
        for (var, bad) in [
            ("HTTP_HEADER_READ_TIMEOUT", "0"),
            ("HTTP_HEADER_READ_TIMEOUT", "soon"),
            ("HTTP_KEEP_ALIVE_TIMEOUT", "-1"),
            ("HTTP_MAX_CONNECTIONS", "0"),
            ("HTTP_MAX_CONNECTIONS", "many"),
            ("DATABASE_MIGRATION_LOCK_TIMEOUT", "0"),
        ] {
            assert_eq!(from(&[(var, bad)]).unwrap_err().var, var, "{var}={bad}");
        }
    }

    #[test]
    fn lists_are_trimmed_and_proxies_accept_addresses_and_cidrs() {
        let s = from(&[
            (
                "CORS_ALLOWED_ORIGINS",
                " https://a.example , https://b.example ,",
            ),
            ("TRUSTED_PROXIES", "10.0.0.0/8,127.0.0.1"),
        ])
        .unwrap();
        assert_eq!(
            s.http.cors_allowed_origins,
            vec!["https://a.example", "https://b.example"]
        );
        assert_eq!(s.http.trusted_proxies.len(), 2);
        assert!(s.http.trusted_proxies[1].contains(&"127.0.0.1".parse::<IpAddr>().unwrap()));
    }
}
