//! The `signing_keys` table: every instance reads it whole (a handful of rows) to build its
//! key ring; `auth-server keys` inserts and retires.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};

use crate::entity::signing_key;

/// The `signing_keys` table.
pub struct SigningKeys<'a, C> {
    db: &'a C,
}

impl<'a, C: ConnectionTrait> SigningKeys<'a, C> {
    pub(super) fn on(db: &'a C) -> Self {
        Self { db }
    }

    /// Every key, oldest activation first.
    pub async fn all(&self) -> Result<Vec<signing_key::Model>, DbErr> {
        signing_key::Entity::find()
            .order_by_asc(signing_key::Column::ActivatesAt)
            .order_by_asc(signing_key::Column::Kid)
            .all(self.db)
            .await
    }

    pub async fn insert(&self, key: signing_key::Model) -> Result<(), DbErr> {
        signing_key::Entity::insert(signing_key::ActiveModel::from(key))
            .exec_without_returning(self.db)
            .await
            .map(drop)
    }

    /// Replaces `kid`'s sealed private key (`keys reseal`); whether a row changed.
    pub async fn set_private_key(&self, kid: &str, sealed: &str) -> Result<bool, DbErr> {
        let result = signing_key::Entity::update_many()
            .col_expr(signing_key::Column::PrivateKey, Expr::value(sealed))
            .filter(signing_key::Column::Kid.eq(kid))
            .exec(self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Marks `kid` retired at `at` unless it already is; whether a row changed.
    pub async fn retire(&self, kid: &str, at: DateTime<Utc>) -> Result<bool, DbErr> {
        let result = signing_key::Entity::update_many()
            .col_expr(signing_key::Column::RetiredAt, Expr::value(at))
            .filter(signing_key::Column::Kid.eq(kid))
            .filter(signing_key::Column::RetiredAt.is_null())
            .exec(self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }
}
