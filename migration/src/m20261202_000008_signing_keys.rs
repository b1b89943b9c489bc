//! `signing_keys`: the asymmetric keys access tokens are signed with, so that other
//! services can verify them from the JWKS. The private half is stored sealed under the
//! key-encryption key; the public half as its JWK.

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
                    .table(SigningKeys::Table)
                    // The RFC 7638 thumbprint of the public key (43 base64url characters).
                    .col(
                        ColumnDef::new(SigningKeys::Kid)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    // `ES256`, `EdDSA` or `RS256`.
                    .col(
                        ColumnDef::new(SigningKeys::Algorithm)
                            .string_len(16)
                            .not_null(),
                    )
                    // The public JWK, as published.
                    .col(ColumnDef::new(SigningKeys::PublicJwk).text().not_null())
                    // The private key's DER, sealed (ChaCha20-Poly1305) under the
                    // key-encryption key, bound to the kid.
                    .col(ColumnDef::new(SigningKeys::PrivateKey).text().not_null())
                    .col(instant(manager, SigningKeys::CreatedAt).not_null())
                    // Published from `created_at`; signs from `activates_at`.
                    .col(instant(manager, SigningKeys::ActivatesAt).not_null())
                    // Set by `keys retire`: signs nothing from then on.
                    .col(instant(manager, SigningKeys::RetiredAt).null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SigningKeys::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    Kid,
    Algorithm,
    PublicJwk,
    PrivateKey,
    CreatedAt,
    ActivatesAt,
    RetiredAt,
}
