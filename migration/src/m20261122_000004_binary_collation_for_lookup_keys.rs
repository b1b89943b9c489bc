//! MySQL/MariaDB: compare `users.email` and `users.username_normalized` byte for byte.
//!
//! Both are normalised in Rust before they are stored or looked up, so the database must
//! not fold them again. MariaDB's and MySQL's default collations are accent-insensitive:
//! with them `jose@example.com` finds (and, under the unique index, collides with)
//! `josé@exämple.com`, so one address could log in to another's account or block its
//! registration. PostgreSQL and SQLite already compare bytes; there this is a no-op.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

async fn set_collation(manager: &SchemaManager<'_>, collation: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() != DatabaseBackend::MySql {
        return Ok(());
    }
    let sql = format!(
        "ALTER TABLE users \
         MODIFY email VARCHAR(254) CHARACTER SET utf8mb4 COLLATE {collation} NOT NULL, \
         MODIFY username_normalized VARCHAR(32) CHARACTER SET utf8mb4 COLLATE {collation} NULL"
    );
    manager.get_connection().execute_unprepared(&sql).await?;
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_collation(manager, "utf8mb4_bin").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_collation(manager, "utf8mb4_general_ci").await
    }
}
