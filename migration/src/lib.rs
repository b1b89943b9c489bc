//! Versioned schema migrations, shared by SQLite, MySQL/MariaDB and PostgreSQL.
//!
//! Each migration spells out its tables and indexes in full, even where they look alike:
//! a migration once applied must keep doing what it did, so they share only `instant`
//! (a column type, not a schema).

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_users;
mod m20261122_000002_create_sessions;
mod m20261122_000003_create_refresh_tokens;
mod m20261122_000004_binary_collation_for_lookup_keys;
mod m20261201_000005_email_skeleton;
mod m20261201_000006_create_mail_outbox;
mod m20261201_000007_account_lifecycle;
mod m20261202_000008_signing_keys;
mod m20261202_000009_session_activity_and_security_events;
mod m20261202_000010_token_hashes_as_varchar;
mod m20261202_000011_second_factors;
mod m20261202_000012_passkeys;
mod m20261204_000013_refresh_chains;

pub mod email_key;

/// The ordered list of migrations the server applies at start-up.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_users::Migration),
            Box::new(m20261122_000002_create_sessions::Migration),
            Box::new(m20261122_000003_create_refresh_tokens::Migration),
            Box::new(m20261122_000004_binary_collation_for_lookup_keys::Migration),
            Box::new(m20261201_000005_email_skeleton::Migration),
            Box::new(m20261201_000006_create_mail_outbox::Migration),
            Box::new(m20261201_000007_account_lifecycle::Migration),
            Box::new(m20261202_000008_signing_keys::Migration),
            Box::new(m20261202_000009_session_activity_and_security_events::Migration),
            Box::new(m20261202_000010_token_hashes_as_varchar::Migration),
            Box::new(m20261202_000011_second_factors::Migration),
            Box::new(m20261202_000012_passkeys::Migration),
            Box::new(m20261204_000013_refresh_chains::Migration),
        ]
    }
}

/// A UTC instant column: `TIMESTAMPTZ` on PostgreSQL, `DATETIME(6)` on MySQL
/// (its `TIMESTAMP` ends in 2038 and may auto-update), text on SQLite.
pub(crate) fn instant<T: IntoIden>(manager: &SchemaManager, name: T) -> ColumnDef {
    let mut col = ColumnDef::new(name);
    match manager.get_database_backend() {
        sea_orm::DatabaseBackend::MySql => col.custom(Alias::new("DATETIME(6)")),
        _ => col.timestamp_with_time_zone(),
    };
    col
}
