//! The `sessions` row: one per login or registration.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub created_at: DateTimeUtc,
    /// The newest refresh token's expiry; access tokens die with the session.
    pub expires_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
    /// The last refresh (or the opening); `me` does not move it.
    pub last_used_at: Option<DateTimeUtc>,
    /// The client that opened the session, and the one that last refreshed it.
    pub created_ip: Option<String>,
    pub created_user_agent: Option<String>,
    pub last_ip: Option<String>,
    pub last_user_agent: Option<String>,
    /// How the session was authenticated (RFC 8176 values, space-separated: `pwd`,
    /// `pwd otp`, `pwd mfa`); `None` for sessions older than second factors: `pwd`.
    pub amr: Option<String>,
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
    #[sea_orm(has_many = "super::refresh_token::Entity")]
    RefreshToken,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl Related<super::refresh_token::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::RefreshToken.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
