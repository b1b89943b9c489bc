//! PostgreSQL: the token-hash lookup keys become `varchar(64)`, so their indexes serve the
//! lookups.
//!
//! They were `char(64)`. sqlx binds a Rust string as `text`, and PostgreSQL compares
//! `char(n)` with `text` by casting the column to `text`, which its index on the `char(n)`
//! values cannot serve: every refresh, and every verification or reset link, read the whole
//! table (a sequential scan that grew with every token issued, and that anyone could make
//! the server run by sending made-up tokens). `varchar` compares with `text` without a cast.
//! The values (64 hex digits) are unchanged. PostgreSQL rewrites both tables and their
//! indexes, holding their locks for as long as that takes. MySQL/MariaDB (`CHAR` with a
//! binary collation, compared with the bound string as is) and SQLite (no `char(n)` type)
//! already use the index; there this is a no-op.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

async fn set_type(manager: &SchemaManager<'_>, sql_type: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(());
    }
    for table in ["refresh_tokens", "email_tokens"] {
        let sql = format!("ALTER TABLE {table} ALTER COLUMN token_hash TYPE {sql_type}");
        manager.get_connection().execute_unprepared(&sql).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_type(manager, "varchar(64)").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_type(manager, "char(64)").await
    }
}
