//! Refresh-token chains: `refresh_tokens.generation` and `refresh_tokens.rotated_at`.
//!
//! A session's refresh tokens become one row that rotation moves on a generation at a
//! time, instead of a new row per rotation (`bench/FINDINGS.md`, issue 17 part 11). Rows
//! written before this migration (tokens issued before chains) keep `generation` NULL and
//! go on working as they did; their session moves onto a chain at its next rotation.
//! Both columns are nullable and without a default, so adding them rewrites no rows on any
//! backend.

use sea_orm_migration::prelude::*;

use crate::instant;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(RefreshTokens::Table)
                    .add_column(
                        ColumnDef::new(RefreshTokens::Generation)
                            .big_integer()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(RefreshTokens::Table)
                    .add_column(instant(manager, RefreshTokens::RotatedAt).null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [RefreshTokens::RotatedAt, RefreshTokens::Generation] {
            manager
                .alter_table(
                    Table::alter()
                        .table(RefreshTokens::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum RefreshTokens {
    Table,
    Generation,
    RotatedAt,
}
