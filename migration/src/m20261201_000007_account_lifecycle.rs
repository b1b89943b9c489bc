//! The account lifecycle by email: `users.email_verified_at`, the `email_tokens` that mails
//! carry (verification, password reset, email change), and `mail_outbox.user_id` so that a
//! deleted account's pending mails go with it.

use sea_orm_migration::prelude::*;

use crate::instant;
use crate::m20261122_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // NULL: not verified. Accounts made before this migration start unverified.
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(instant(manager, Alias::new("email_verified_at")).null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(EmailTokens::Table)
                    .col(
                        ColumnDef::new(EmailTokens::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(EmailTokens::UserId).uuid().not_null())
                    .col(
                        ColumnDef::new(EmailTokens::Purpose)
                            .string_len(32)
                            .not_null(),
                    )
                    // Hex of a 256-bit keyed hash of the purpose and the token.
                    .col(
                        ColumnDef::new(EmailTokens::TokenHash)
                            .char_len(64)
                            .not_null(),
                    )
                    // The address the token was mailed to (for an email change, the new one).
                    .col(
                        ColumnDef::new(EmailTokens::Email)
                            .string_len(254)
                            .not_null(),
                    )
                    .col(instant(manager, EmailTokens::CreatedAt).not_null())
                    .col(instant(manager, EmailTokens::ExpiresAt).not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_email_tokens_user")
                            .from(EmailTokens::Table, EmailTokens::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Every use looks a token up by its hash.
        manager
            .create_index(
                Index::create()
                    .name("uq_email_tokens_token_hash")
                    .table(EmailTokens::Table)
                    .col(EmailTokens::TokenHash)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // A new request deletes the user's older tokens of its purpose.
        manager
            .create_index(
                Index::create()
                    .name("idx_email_tokens_user_purpose")
                    .table(EmailTokens::Table)
                    .col(EmailTokens::UserId)
                    .col(EmailTokens::Purpose)
                    .to_owned(),
            )
            .await?;
        // No foreign key: a mail outlives nothing but its account, and SQLite cannot add
        // one to an existing table. Deleting an account deletes its mails by this column.
        manager
            .alter_table(
                Table::alter()
                    .table(MailOutbox::Table)
                    .add_column(ColumnDef::new(MailOutbox::UserId).uuid().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_mail_outbox_user_id")
                    .table(MailOutbox::Table)
                    .col(MailOutbox::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_mail_outbox_user_id")
                    .table(MailOutbox::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(MailOutbox::Table)
                    .drop_column(MailOutbox::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(EmailTokens::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Alias::new("email_verified_at"))
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum EmailTokens {
    Table,
    Id,
    UserId,
    Purpose,
    TokenHash,
    Email,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum MailOutbox {
    Table,
    UserId,
}
