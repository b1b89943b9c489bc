//! The database section: where the database is and how long its operations may take.

use std::time::Duration;

use secrecy::SecretString;

use super::ConfigError;
use super::parse::{Lookup, nonzero_duration, positive};

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

impl DatabaseSettings {
    pub(super) fn read(get: &impl Lookup) -> Result<Self, ConfigError> {
        Ok(Self {
            url: SecretString::from(
                get("DATABASE_URL").unwrap_or_else(|| "sqlite://auth.db?mode=rwc".to_owned()),
            ),
            max_connections: positive(get, "DATABASE_MAX_CONNECTIONS", 10u32)?,
            acquire_timeout: nonzero_duration(get, "DATABASE_ACQUIRE_TIMEOUT", "5s")?,
            statement_timeout: nonzero_duration(get, "DATABASE_STATEMENT_TIMEOUT", "5s")?,
            migration_lock_timeout: nonzero_duration(get, "DATABASE_MIGRATION_LOCK_TIMEOUT", "5m")?,
        })
    }
}
