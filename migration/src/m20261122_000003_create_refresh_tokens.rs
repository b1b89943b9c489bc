//! Creates `refresh_tokens`: the keyed hashes of issued refresh tokens, spent on rotation.

use sea_orm_migration::prelude::*;

use crate::instant;
use crate::m20261122_000002_create_sessions::Sessions;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
                    .col(
                        ColumnDef::new(RefreshTokens::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(RefreshTokens::SessionId).uuid().not_null())
                    // Hex of a 256-bit keyed hash; the plaintext is never stored.
                    .col(
                        ColumnDef::new(RefreshTokens::TokenHash)
                            .char_len(64)
                            .not_null(),
                    )
                    .col(instant(manager, RefreshTokens::CreatedAt).not_null())
                    .col(instant(manager, RefreshTokens::ExpiresAt).not_null())
                    // Set once, by the conditional update that rotates the token.
                    .col(instant(manager, RefreshTokens::SpentAt).null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_refresh_tokens_session")
                            .from(RefreshTokens::Table, RefreshTokens::SessionId)
                            .to(Sessions::Table, Sessions::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Every refresh and refresh-token logout looks a token up by its hash.
        manager
            .create_index(
                Index::create()
                    .name("uq_refresh_tokens_token_hash")
                    .table(RefreshTokens::Table)
                    .col(RefreshTokens::TokenHash)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_refresh_tokens_session_id")
                    .table(RefreshTokens::Table)
                    .col(RefreshTokens::SessionId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RefreshTokens::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    Id,
    SessionId,
    TokenHash,
    CreatedAt,
    ExpiresAt,
    SpentAt,
}
