//! Second factors: `totp_factors` (one TOTP secret per account, sealed, with the last
//! time step used), `recovery_codes` (hashes of the one-use codes), `mfa_tickets` (the
//! tickets `login` hands out instead of tokens when a second factor is due), and
//! `sessions.amr`, how a session was authenticated, kept for the access tokens of its
//! refreshes. Hashes are `varchar(64)`, never `char(64)`: PostgreSQL cannot use an index on
//! `char(n)` for the `text` parameter sqlx binds (see migration 000010).

use sea_orm_migration::prelude::*;

use crate::instant;
use crate::m20261122_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TotpFactors::Table)
                    // One factor per account: enrolling again replaces a pending one.
                    .col(
                        ColumnDef::new(TotpFactors::UserId)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    // The secret sealed (ChaCha20-Poly1305) under a key derived from
                    // KEY_ENCRYPTION_KEY, bound to the user id; never in plaintext.
                    .col(
                        ColumnDef::new(TotpFactors::SecretSealed)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(instant(manager, TotpFactors::CreatedAt).not_null())
                    // NULL while the enrolment waits for `confirmTotp`.
                    .col(instant(manager, TotpFactors::EnabledAt).null())
                    // The last time step (Unix time / 30 s) a code was accepted for: a code
                    // of that step or an earlier one is refused, on every instance.
                    .col(
                        ColumnDef::new(TotpFactors::LastUsedStep)
                            .big_integer()
                            .null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_totp_factors_user")
                            .from(TotpFactors::Table, TotpFactors::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RecoveryCodes::Table)
                    .col(
                        ColumnDef::new(RecoveryCodes::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(RecoveryCodes::UserId).uuid().not_null())
                    // Hex of SHA-256 over the user id and the code (80 random bits).
                    .col(
                        ColumnDef::new(RecoveryCodes::CodeHash)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(instant(manager, RecoveryCodes::CreatedAt).not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_recovery_codes_user")
                            .from(RecoveryCodes::Table, RecoveryCodes::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // A code is used by deleting (user, hash); a user's codes are counted and replaced.
        manager
            .create_index(
                Index::create()
                    .name("uq_recovery_codes_user_hash")
                    .table(RecoveryCodes::Table)
                    .col(RecoveryCodes::UserId)
                    .col(RecoveryCodes::CodeHash)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(MfaTickets::Table)
                    .col(
                        ColumnDef::new(MfaTickets::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(MfaTickets::UserId).uuid().not_null())
                    // Hex of a 256-bit keyed hash of the ticket.
                    .col(
                        ColumnDef::new(MfaTickets::TokenHash)
                            .string_len(64)
                            .not_null(),
                    )
                    // Hex of a keyed hash of the password hash the login checked: a
                    // ticket dies with a change of password.
                    .col(
                        ColumnDef::new(MfaTickets::PasswordDigest)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(instant(manager, MfaTickets::CreatedAt).not_null())
                    .col(instant(manager, MfaTickets::ExpiresAt).not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_mfa_tickets_user")
                            .from(MfaTickets::Table, MfaTickets::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // `verifyMfa` looks a ticket up by its hash.
        manager
            .create_index(
                Index::create()
                    .name("uq_mfa_tickets_token_hash")
                    .table(MfaTickets::Table)
                    .col(MfaTickets::TokenHash)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Disabling the factor deletes the user's tickets.
        manager
            .create_index(
                Index::create()
                    .name("idx_mfa_tickets_user")
                    .table(MfaTickets::Table)
                    .col(MfaTickets::UserId)
                    .to_owned(),
            )
            .await?;

        // NULL for sessions opened before this migration: a password, as they all were.
        manager
            .alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .add_column(ColumnDef::new(Sessions::Amr).string_len(32).null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .drop_column(Sessions::Amr)
                    .to_owned(),
            )
            .await?;
        for table in [
            MfaTickets::Table.into_iden(),
            RecoveryCodes::Table.into_iden(),
            TotpFactors::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum TotpFactors {
    Table,
    UserId,
    SecretSealed,
    CreatedAt,
    EnabledAt,
    LastUsedStep,
}

#[derive(DeriveIden)]
enum RecoveryCodes {
    Table,
    Id,
    UserId,
    CodeHash,
    CreatedAt,
}

#[derive(DeriveIden)]
enum MfaTickets {
    Table,
    Id,
    UserId,
    TokenHash,
    PasswordDigest,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Amr,
}
