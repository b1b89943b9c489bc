//! The `email_tokens` table: keyed hashes of the tokens that mails carry. A row is deleted
//! when its token is used or superseded, so "used" and "unknown" are one state.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::entity::email_token;

/// A token row about to be inserted.
pub struct NewEmailToken<'a> {
    pub user_id: Uuid,
    pub purpose: &'static str,
    pub token_hash: String,
    pub email: &'a str,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The `email_tokens` table, on the pool or inside a write.
pub struct EmailTokens<'a, C> {
    db: &'a C,
}

impl<'a, C: ConnectionTrait> EmailTokens<'a, C> {
    pub(super) fn on(db: &'a C) -> Self {
        Self { db }
    }

    /// Deletes `user`'s tokens of `purpose` (a new one supersedes them).
    pub async fn delete_of(&self, user: Uuid, purpose: &str) -> Result<(), DbErr> {
        email_token::Entity::delete_many()
            .filter(email_token::Column::UserId.eq(user))
            .filter(email_token::Column::Purpose.eq(purpose))
            .exec(self.db)
            .await
            .map(drop)
    }

    pub async fn insert(&self, new: NewEmailToken<'_>) -> Result<(), DbErr> {
        email_token::Entity::insert(email_token::ActiveModel {
            id: Set(Uuid::new_v4()),
            user_id: Set(new.user_id),
            purpose: Set(new.purpose.to_owned()),
            token_hash: Set(new.token_hash),
            email: Set(new.email.to_owned()),
            created_at: Set(new.created_at),
            expires_at: Set(new.expires_at),
        })
        .exec_without_returning(self.db)
        .await
        .map(drop)
    }

    /// The token stored under `token_hash` if it has not expired at `at`.
    pub async fn find_unexpired(
        &self,
        token_hash: String,
        at: DateTime<Utc>,
    ) -> Result<Option<email_token::Model>, DbErr> {
        email_token::Entity::find()
            .filter(email_token::Column::TokenHash.eq(token_hash))
            .filter(email_token::Column::ExpiresAt.gt(at))
            .one(self.db)
            .await
    }

    /// Uses token `id` with one conditional delete; `false` if it is gone or expired by
    /// `at` (a concurrent use won, or it was superseded): of two uses, exactly one wins.
    pub async fn consume(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, DbErr> {
        let deleted = email_token::Entity::delete_many()
            .filter(email_token::Column::Id.eq(id))
            .filter(email_token::Column::ExpiresAt.gt(at))
            .exec(self.db)
            .await?;
        Ok(deleted.rows_affected == 1)
    }

    /// Deletes tokens that expired before `at`; returns how many.
    pub async fn delete_expired(&self, at: DateTime<Utc>) -> Result<u64, DbErr> {
        let deleted = email_token::Entity::delete_many()
            .filter(email_token::Column::ExpiresAt.lt(at))
            .exec(self.db)
            .await?;
        Ok(deleted.rows_affected)
    }
}
