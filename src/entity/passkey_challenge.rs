//! The `passkey_challenges` row: a WebAuthn ceremony between its begin and its finish,
//! found by the keyed hash of the id the client holds, spent once.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "passkey_challenges")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Hex of HMAC-SHA-256 over the challenge id the client holds.
    pub token_hash: String,
    /// `register`, `login` or `signup`.
    pub purpose: String,
    /// The account registered for, or created by a signup; `None` for a login.
    pub user_id: Option<Uuid>,
    /// A signup's address and username.
    pub email: Option<String>,
    pub username: Option<String>,
    /// webauthn-rs's ceremony state, serialised.
    pub state: String,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
