//! The `refresh_tokens` row: a session's refresh-token chain (its live generation), or a
//! token issued before chains, by a keyed hash.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refresh_tokens")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub session_id: Uuid,
    /// Hex of HMAC-SHA-256(refresh secret, …): of the chain's id for a chain, of the token
    /// itself for a token issued before chains (`auth::tokens::refresh`).
    pub token_hash: String,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    /// When rotation spent it; `None` while it is the session's live token. A chain is
    /// never spent: rotation moves its generation on.
    pub spent_at: Option<DateTimeUtc>,
    /// A chain's live generation; `None` for a token issued before chains. The live
    /// generation's expiry is `expires_at`; every earlier generation is spent.
    pub generation: Option<i64>,
    /// When the chain last moved on (its previous generation was spent); `None` before its
    /// first rotation and for a token issued before chains.
    pub rotated_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::session::Entity",
        from = "Column::SessionId",
        to = "super::session::Column::Id",
        on_delete = "Cascade"
    )]
    Session,
}

impl Related<super::session::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Session.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
