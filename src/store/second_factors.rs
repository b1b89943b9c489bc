//! The second factors' tables: `totp_factors`, `recovery_codes` and `mfa_tickets`. Every
//! use of a code or a ticket is one conditional statement whose row count is the answer,
//! so of two instances racing with the same code or ticket exactly one wins.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
};
use uuid::Uuid;

use super::{Store, Write};
use crate::entity::{mfa_ticket, recovery_code, totp_factor};

/// A ticket row about to be inserted.
pub struct NewMfaTicket {
    pub user_id: Uuid,
    pub token_hash: String,
    pub password_digest: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The second factors' tables, on the pool or inside a write.
pub struct SecondFactors<'a, C> {
    db: &'a C,
}

impl Store {
    pub fn second_factors(&self) -> SecondFactors<'_, DatabaseConnection> {
        SecondFactors { db: &self.db }
    }
}

impl Write {
    pub fn second_factors(&self) -> SecondFactors<'_, DatabaseTransaction> {
        SecondFactors { db: &self.txn }
    }
}

impl<C: ConnectionTrait> SecondFactors<'_, C> {
    /// `user`'s TOTP factor, pending or enabled.
    pub async fn totp_of(&self, user: Uuid) -> Result<Option<totp_factor::Model>, DbErr> {
        totp_factor::Entity::find_by_id(user).one(self.db).await
    }

    /// Every stored factor's user and sealed secret (`keys reseal`).
    pub async fn all_totp_secrets(&self) -> Result<Vec<(Uuid, String)>, DbErr> {
        let rows = totp_factor::Entity::find().all(self.db).await?;
        Ok(rows
            .into_iter()
            .map(|row| (row.user_id, row.secret_sealed))
            .collect())
    }

    /// Replaces `user`'s sealed secret, if it is still `was` (`keys reseal`); whether it
    /// changed.
    pub async fn reseal_totp_secret(
        &self,
        user: Uuid,
        was: &str,
        sealed: String,
    ) -> Result<bool, DbErr> {
        let updated = totp_factor::Entity::update_many()
            .col_expr(totp_factor::Column::SecretSealed, Expr::value(sealed))
            .filter(totp_factor::Column::UserId.eq(user))
            .filter(totp_factor::Column::SecretSealed.eq(was))
            .exec(self.db)
            .await?;
        Ok(updated.rows_affected == 1)
    }

    /// Deletes `user`'s pending factor, if any (an enabled one stays).
    pub async fn delete_pending_totp(&self, user: Uuid) -> Result<(), DbErr> {
        totp_factor::Entity::delete_many()
            .filter(totp_factor::Column::UserId.eq(user))
            .filter(totp_factor::Column::EnabledAt.is_null())
            .exec(self.db)
            .await
            .map(drop)
    }

    /// Stores a pending factor for `user`; with a factor already there (an enabled one),
    /// it fails as a unique violation.
    pub async fn put_pending_totp(
        &self,
        user: Uuid,
        secret_sealed: String,
        at: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        totp_factor::Entity::insert(totp_factor::ActiveModel {
            user_id: Set(user),
            secret_sealed: Set(secret_sealed),
            created_at: Set(at),
            enabled_at: Set(None),
            last_used_step: Set(None),
        })
        .exec_without_returning(self.db)
        .await
        .map(drop)
    }

    /// Enables `user`'s pending factor, remembering `step` as used; `false` if there was
    /// no pending factor (none, or enabled meanwhile).
    pub async fn enable_totp(
        &self,
        user: Uuid,
        step: i64,
        at: DateTime<Utc>,
    ) -> Result<bool, DbErr> {
        let updated = totp_factor::Entity::update_many()
            .col_expr(totp_factor::Column::EnabledAt, Expr::value(Some(at)))
            .col_expr(totp_factor::Column::LastUsedStep, Expr::value(Some(step)))
            .filter(totp_factor::Column::UserId.eq(user))
            .filter(totp_factor::Column::EnabledAt.is_null())
            .exec(self.db)
            .await?;
        Ok(updated.rows_affected == 1)
    }

    /// Spends time step `step` of `user`'s enabled factor: one conditional update, `true`
    /// only if no code of this step or a later one was accepted before.
    pub async fn use_step(&self, user: Uuid, step: i64) -> Result<bool, DbErr> {
        let updated = totp_factor::Entity::update_many()
            .col_expr(totp_factor::Column::LastUsedStep, Expr::value(Some(step)))
            .filter(totp_factor::Column::UserId.eq(user))
            .filter(totp_factor::Column::EnabledAt.is_not_null())
            .filter(
                Condition::any()
                    .add(totp_factor::Column::LastUsedStep.is_null())
                    .add(totp_factor::Column::LastUsedStep.lt(step)),
            )
            .exec(self.db)
            .await?;
        Ok(updated.rows_affected == 1)
    }

    /// Deletes `user`'s factor, recovery codes and tickets; `true` if an enabled factor was
    /// among them.
    pub async fn delete_all_of(&self, user: Uuid) -> Result<bool, DbErr> {
        let enabled = totp_factor::Entity::delete_many()
            .filter(totp_factor::Column::UserId.eq(user))
            .filter(totp_factor::Column::EnabledAt.is_not_null())
            .exec(self.db)
            .await?;
        totp_factor::Entity::delete_many()
            .filter(totp_factor::Column::UserId.eq(user))
            .exec(self.db)
            .await?;
        recovery_code::Entity::delete_many()
            .filter(recovery_code::Column::UserId.eq(user))
            .exec(self.db)
            .await?;
        self.delete_tickets_of(user).await?;
        Ok(enabled.rows_affected == 1)
    }

    /// Replaces `user`'s recovery codes by `hashes`.
    pub async fn replace_recovery_codes(
        &self,
        user: Uuid,
        hashes: Vec<String>,
        at: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        recovery_code::Entity::delete_many()
            .filter(recovery_code::Column::UserId.eq(user))
            .exec(self.db)
            .await?;
        let rows = hashes
            .into_iter()
            .map(|code_hash| recovery_code::ActiveModel {
                id: Set(Uuid::new_v4()),
                user_id: Set(user),
                code_hash: Set(code_hash),
                created_at: Set(at),
            });
        recovery_code::Entity::insert_many(rows)
            .exec_without_returning(self.db)
            .await
            .map(drop)
    }

    /// Uses one of `user`'s recovery codes by deleting it; `false` if it is not theirs or
    /// is used already.
    pub async fn use_recovery_code(&self, user: Uuid, code_hash: String) -> Result<bool, DbErr> {
        let deleted = recovery_code::Entity::delete_many()
            .filter(recovery_code::Column::UserId.eq(user))
            .filter(recovery_code::Column::CodeHash.eq(code_hash))
            .exec(self.db)
            .await?;
        Ok(deleted.rows_affected == 1)
    }

    /// How many unused recovery codes `user` has.
    pub async fn recovery_codes_left(&self, user: Uuid) -> Result<u64, DbErr> {
        recovery_code::Entity::find()
            .filter(recovery_code::Column::UserId.eq(user))
            .count(self.db)
            .await
    }

    pub async fn insert_ticket(&self, new: NewMfaTicket) -> Result<(), DbErr> {
        mfa_ticket::Entity::insert(mfa_ticket::ActiveModel {
            id: Set(Uuid::new_v4()),
            user_id: Set(new.user_id),
            token_hash: Set(new.token_hash),
            password_digest: Set(new.password_digest),
            created_at: Set(new.created_at),
            expires_at: Set(new.expires_at),
        })
        .exec_without_returning(self.db)
        .await
        .map(drop)
    }

    /// The ticket stored under `token_hash` if it has not expired at `at`.
    pub async fn find_ticket(
        &self,
        token_hash: String,
        at: DateTime<Utc>,
    ) -> Result<Option<mfa_ticket::Model>, DbErr> {
        mfa_ticket::Entity::find()
            .filter(mfa_ticket::Column::TokenHash.eq(token_hash))
            .filter(mfa_ticket::Column::ExpiresAt.gt(at))
            .one(self.db)
            .await
    }

    /// Spends ticket `id` with one conditional delete; `false` if it is gone or expired by
    /// `at`: of two uses, exactly one wins.
    pub async fn consume_ticket(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, DbErr> {
        let deleted = mfa_ticket::Entity::delete_many()
            .filter(mfa_ticket::Column::Id.eq(id))
            .filter(mfa_ticket::Column::ExpiresAt.gt(at))
            .exec(self.db)
            .await?;
        Ok(deleted.rows_affected == 1)
    }

    /// Deletes `user`'s tickets (a changed password or a disabled factor ends them).
    pub async fn delete_tickets_of(&self, user: Uuid) -> Result<(), DbErr> {
        mfa_ticket::Entity::delete_many()
            .filter(mfa_ticket::Column::UserId.eq(user))
            .exec(self.db)
            .await
            .map(drop)
    }

    /// Deletes tickets that expired before `at`; returns how many.
    pub async fn delete_expired_tickets(&self, at: DateTime<Utc>) -> Result<u64, DbErr> {
        let deleted = mfa_ticket::Entity::delete_many()
            .filter(mfa_ticket::Column::ExpiresAt.lt(at))
            .exec(self.db)
            .await?;
        Ok(deleted.rows_affected)
    }
}
