//! The auth service: accounts, sessions and tokens. Knows nothing of GraphQL or HTTP.
//!
//! One file per flow: [`accounts`] (register, login), [`sessions`] (open, authenticate,
//! logout, purge), [`rotation`] (refresh). Every query is in `crate::store`.

mod accounts;
mod model;
mod passwords;
mod rate_limit;
mod rotation;
mod sessions;
pub mod tokens;

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};

pub use accounts::LoginIdentifier;
pub use model::{Account, Issued, Principal};
pub use passwords::PasswordHasher;
pub use rate_limit::RateLimits;
use tokens::TokenKeys;

use crate::clock::Clock;
use crate::config::Settings;
use crate::error::AuthError;
use crate::storage::DatabaseFile;
use crate::store::Store;

/// Everything the auth service needs, built once from settings.
pub struct AuthService {
    store: Store,
    clock: Clock,
    keys: TokenKeys,
    passwords: PasswordHasher,
    limits: RateLimits,
    access_ttl: chrono::Duration,
    refresh_ttl: chrono::Duration,
    reuse_grace: chrono::Duration,
}

fn chrono_duration(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl AuthService {
    /// The service on the system clock.
    pub fn new(db: sea_orm::DatabaseConnection, settings: &Settings) -> Self {
        Self::with_clock(db, settings, Clock::System)
    }

    /// The service judging time by `clock` (call it after migrating).
    pub fn with_clock(db: sea_orm::DatabaseConnection, settings: &Settings, clock: Clock) -> Self {
        use secrecy::ExposeSecret;
        Self {
            store: Store::new(db, settings.database.url.expose_secret()),
            clock,
            keys: TokenKeys::new(&settings.tokens),
            passwords: PasswordHasher::new(&settings.passwords),
            limits: RateLimits::new(&settings.rate_limits),
            access_ttl: chrono_duration(settings.tokens.access_ttl),
            refresh_ttl: chrono_duration(settings.tokens.refresh_ttl),
            reuse_grace: chrono_duration(settings.tokens.reuse_grace),
        }
    }

    pub fn passwords(&self) -> &PasswordHasher {
        &self.passwords
    }

    pub fn limits(&self) -> &RateLimits {
        &self.limits
    }

    /// The SQLite file this service writes to, for `/health` to watch too.
    pub fn database_file(&self) -> Option<Arc<DatabaseFile>> {
        self.store.database_file()
    }

    /// The store, for tests that look under the service.
    #[cfg(test)]
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// The token keys, for tests that mint their own.
    #[cfg(test)]
    pub(crate) fn keys(&self) -> &TokenKeys {
        &self.keys
    }

    /// The current instant, by the service's clock (microseconds).
    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Counts a registration attempt from `ip` (before the input is even looked at).
    pub fn count_register_attempt(&self, ip: IpAddr) -> Result<(), AuthError> {
        self.limits.register_from(ip)
    }

    /// Counts a login attempt from `ip` (before the input is even looked at).
    pub fn count_login_attempt(&self, ip: IpAddr) -> Result<(), AuthError> {
        self.limits.login_from(ip)
    }
}
