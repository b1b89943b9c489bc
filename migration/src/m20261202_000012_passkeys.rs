//! Passkeys: `passkeys` (a user's WebAuthn credentials, as webauthn-rs keeps them: public
//! key, signature counter, backup state) and `passkey_challenges` (a ceremony between its
//! begin and its finish, so any instance can finish what another began). Both are looked
//! up by a hash in `varchar(64)`, never `char(64)` (see migration 000010).

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
                    .table(Passkeys::Table)
                    .col(ColumnDef::new(Passkeys::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Passkeys::UserId).uuid().not_null())
                    // Hex of SHA-256 over the credential id (up to 1,023 bytes: too long
                    // for a unique index on MySQL), unique across all accounts.
                    .col(
                        ColumnDef::new(Passkeys::CredentialHash)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Passkeys::Name).string_len(64).not_null())
                    // webauthn-rs's `Passkey` as JSON: no secret, but its integrity is
                    // the account's.
                    .col(ColumnDef::new(Passkeys::Credential).text().not_null())
                    .col(instant(manager, Passkeys::CreatedAt).not_null())
                    .col(instant(manager, Passkeys::LastUsedAt).null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_passkeys_user")
                            .from(Passkeys::Table, Passkeys::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // A login finds the credential the authenticator chose by its id.
        manager
            .create_index(
                Index::create()
                    .name("uq_passkeys_credential_hash")
                    .table(Passkeys::Table)
                    .col(Passkeys::CredentialHash)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // `passkeys` lists a user's; registration excludes them.
        manager
            .create_index(
                Index::create()
                    .name("idx_passkeys_user")
                    .table(Passkeys::Table)
                    .col(Passkeys::UserId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PasskeyChallenges::Table)
                    .col(
                        ColumnDef::new(PasskeyChallenges::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    // Hex of a keyed hash of the challenge id handed to the client.
                    .col(
                        ColumnDef::new(PasskeyChallenges::TokenHash)
                            .string_len(64)
                            .not_null(),
                    )
                    // `register`, `login` or `signup`: a challenge finishes only its own.
                    .col(
                        ColumnDef::new(PasskeyChallenges::Purpose)
                            .string_len(16)
                            .not_null(),
                    )
                    // The account it registers for (or will create, for a signup); NULL
                    // for a login, which learns the account from the authenticator. No
                    // foreign key: a signup's account does not exist yet.
                    .col(ColumnDef::new(PasskeyChallenges::UserId).uuid().null())
                    // A signup's address and username, checked again at its finish.
                    .col(
                        ColumnDef::new(PasskeyChallenges::Email)
                            .string_len(255)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(PasskeyChallenges::Username)
                            .string_len(64)
                            .null(),
                    )
                    // webauthn-rs's ceremony state as JSON (the challenge bytes and what
                    // the finish must check); never sent to a client.
                    .col(ColumnDef::new(PasskeyChallenges::State).text().not_null())
                    .col(instant(manager, PasskeyChallenges::CreatedAt).not_null())
                    .col(instant(manager, PasskeyChallenges::ExpiresAt).not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_passkey_challenges_token_hash")
                    .table(PasskeyChallenges::Table)
                    .col(PasskeyChallenges::TokenHash)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // A new registration drops the account's oldest pending ones beyond five.
        manager
            .create_index(
                Index::create()
                    .name("idx_passkey_challenges_user_purpose")
                    .table(PasskeyChallenges::Table)
                    .col(PasskeyChallenges::UserId)
                    .col(PasskeyChallenges::Purpose)
                    .to_owned(),
            )
            .await?;
        // The purge deletes expired challenges.
        manager
            .create_index(
                Index::create()
                    .name("idx_passkey_challenges_expires_at")
                    .table(PasskeyChallenges::Table)
                    .col(PasskeyChallenges::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            PasskeyChallenges::Table.into_iden(),
            Passkeys::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Passkeys {
    Table,
    Id,
    UserId,
    CredentialHash,
    Name,
    Credential,
    CreatedAt,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum PasskeyChallenges {
    Table,
    Id,
    TokenHash,
    Purpose,
    UserId,
    Email,
    Username,
    State,
    CreatedAt,
    ExpiresAt,
}
