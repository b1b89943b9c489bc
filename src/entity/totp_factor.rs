//! The `totp_factors` row: an account's TOTP secret, sealed, pending until confirmed.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "totp_factors")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    /// The secret sealed under the TOTP key, bound to `user_id` (`auth::totp`).
    pub secret_sealed: String,
    pub created_at: DateTimeUtc,
    /// When `confirmTotp` activated it; `None` while the enrolment is pending.
    pub enabled_at: Option<DateTimeUtc>,
    /// The last time step a code was accepted for (Unix seconds / 30).
    pub last_used_step: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id",
        on_delete = "Cascade"
    )]
    User,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
