//! The `signing_keys` row: one asymmetric key that signs access tokens, or did, or will.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "signing_keys")]
pub struct Model {
    /// The RFC 7638 thumbprint of the public key: the `kid` tokens carry.
    #[sea_orm(primary_key, auto_increment = false)]
    pub kid: String,
    /// `ES256`, `EdDSA` or `RS256`.
    pub algorithm: String,
    /// The public JWK as published.
    pub public_jwk: String,
    /// The private key, sealed under the key-encryption key.
    pub private_key: String,
    pub created_at: DateTimeUtc,
    pub activates_at: DateTimeUtc,
    pub retired_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
