//! Creates `users`: one row per account, emails and usernames unique case-insensitively.

use sea_orm_migration::prelude::*;

use crate::instant;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(ColumnDef::new(Users::Id).uuid().not_null().primary_key())
                    // Stored normalised (trimmed, lower-case), so a plain unique index is
                    // case-insensitive on every backend.
                    .col(ColumnDef::new(Users::Email).string_len(254).not_null())
                    // As typed by the user, for display.
                    .col(ColumnDef::new(Users::Username).string_len(32).null())
                    // Lower-case copy that carries the uniqueness.
                    .col(
                        ColumnDef::new(Users::UsernameNormalized)
                            .string_len(32)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Users::PasswordHash)
                            .string_len(72)
                            .not_null(),
                    )
                    .col(instant(manager, Users::CreatedAt).not_null())
                    .col(instant(manager, Users::UpdatedAt).not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_users_email")
                    .table(Users::Table)
                    .col(Users::Email)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_users_username_normalized")
                    .table(Users::Table)
                    .col(Users::UsernameNormalized)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Users::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub(crate) enum Users {
    Table,
    Id,
    Email,
    Username,
    UsernameNormalized,
    PasswordHash,
    CreatedAt,
    UpdatedAt,
}
