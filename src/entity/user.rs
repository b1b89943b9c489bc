//! The `users` row.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Normalised: trimmed, NFKC and lower-case (`domain::Email`).
    pub email: String,
    /// The look-alike key of `email` (`domain::Email::skeleton_key`), under a unique index
    /// so no two accounts have addresses that display alike. NULL only on rows the
    /// migration that added it found to look like an older account's.
    pub email_skeleton: Option<String>,
    /// As the user typed it.
    pub username: Option<String>,
    /// Lower-case; carries the uniqueness.
    pub username_normalized: Option<String>,
    pub password_hash: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// When the address was proven (a verification or reset token mailed to it was used);
    /// `None` while it is not.
    pub email_verified_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::session::Entity")]
    Session,
}

impl Related<super::session::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Session.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
