//! The passkeys' tables: `passkeys` and `passkey_challenges`. A challenge is spent with one
//! conditional delete whose row count is the answer, so of two finishes of one ceremony
//! (on any instances) exactly one goes on.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::{Store, Write};
use crate::entity::{passkey, passkey_challenge, user};

/// A passkey row about to be inserted.
pub struct NewPasskey {
    pub id: Uuid,
    pub user_id: Uuid,
    pub credential_hash: String,
    pub name: String,
    pub credential: String,
    pub created_at: DateTime<Utc>,
}

/// A challenge row about to be inserted.
pub struct NewPasskeyChallenge {
    pub token_hash: String,
    pub purpose: &'static str,
    pub user_id: Option<Uuid>,
    pub email: Option<String>,
    pub username: Option<String>,
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The passkeys' tables, on the pool or inside a write.
pub struct Passkeys<'a, C> {
    db: &'a C,
}

impl Store {
    pub fn passkeys(&self) -> Passkeys<'_, DatabaseConnection> {
        Passkeys { db: &self.db }
    }
}

impl Write {
    pub fn passkeys(&self) -> Passkeys<'_, DatabaseTransaction> {
        Passkeys { db: &self.txn }
    }
}

impl<C: ConnectionTrait> Passkeys<'_, C> {
    /// `user`'s passkeys, oldest first.
    pub async fn of_user(&self, user: Uuid) -> Result<Vec<passkey::Model>, DbErr> {
        passkey::Entity::find()
            .filter(passkey::Column::UserId.eq(user))
            .order_by_asc(passkey::Column::CreatedAt)
            .order_by_asc(passkey::Column::Id)
            .all(self.db)
            .await
    }

    /// How many passkeys `user` has.
    pub async fn count_of_user(&self, user: Uuid) -> Result<u64, DbErr> {
        passkey::Entity::find()
            .filter(passkey::Column::UserId.eq(user))
            .count(self.db)
            .await
    }

    /// Locks `user`'s row until the transaction ends, with a write that changes nothing:
    /// a row lock on PostgreSQL (`FOR NO KEY UPDATE`, which the passkeys' foreign key does
    /// not wait for) and MySQL, SQLite's write lock. Writes that count an account's passkeys
    /// then count one after the other, each seeing what the one before committed.
    pub async fn lock_owner(&self, user: Uuid) -> Result<(), DbErr> {
        user::Entity::update_many()
            .col_expr(user::Column::UpdatedAt, Expr::col(user::Column::UpdatedAt))
            .filter(user::Column::Id.eq(user))
            .exec(self.db)
            .await
            .map(drop)
    }

    /// The passkey whose credential id hashes to `credential_hash`, of any account.
    pub async fn by_credential(
        &self,
        credential_hash: &str,
    ) -> Result<Option<passkey::Model>, DbErr> {
        passkey::Entity::find()
            .filter(passkey::Column::CredentialHash.eq(credential_hash))
            .one(self.db)
            .await
    }

    /// Stores a new passkey; a credential registered before (to anyone) fails as a unique
    /// violation.
    pub async fn insert(&self, new: NewPasskey) -> Result<(), DbErr> {
        passkey::Entity::insert(passkey::ActiveModel {
            id: Set(new.id),
            user_id: Set(new.user_id),
            credential_hash: Set(new.credential_hash),
            name: Set(new.name),
            credential: Set(new.credential),
            created_at: Set(new.created_at),
            last_used_at: Set(None),
        })
        .exec_without_returning(self.db)
        .await
        .map(drop)
    }

    /// Records a login with passkey `id`: its new state (counter, backup flags) and when.
    /// Conditional on the state the login verified against, so of two logins that raced
    /// with one signature counter only one records; `false` for the other.
    pub async fn record_use(
        &self,
        id: Uuid,
        verified_against: &str,
        credential: String,
        at: DateTime<Utc>,
    ) -> Result<bool, DbErr> {
        let updated = passkey::Entity::update_many()
            .col_expr(passkey::Column::Credential, Expr::value(credential))
            .col_expr(passkey::Column::LastUsedAt, Expr::value(Some(at)))
            .filter(passkey::Column::Id.eq(id))
            .filter(passkey::Column::Credential.eq(verified_against))
            .exec(self.db)
            .await?;
        Ok(updated.rows_affected == 1)
    }

    /// Deletes `user`'s passkey `id`; `false` if the user has no such passkey.
    pub async fn delete(&self, user: Uuid, id: Uuid) -> Result<bool, DbErr> {
        let deleted = passkey::Entity::delete_many()
            .filter(passkey::Column::Id.eq(id))
            .filter(passkey::Column::UserId.eq(user))
            .exec(self.db)
            .await?;
        Ok(deleted.rows_affected == 1)
    }

    /// Stores a ceremony's state until its finish.
    pub async fn insert_challenge(&self, new: NewPasskeyChallenge) -> Result<(), DbErr> {
        passkey_challenge::Entity::insert(passkey_challenge::ActiveModel {
            id: Set(Uuid::new_v4()),
            token_hash: Set(new.token_hash),
            purpose: Set(new.purpose.to_owned()),
            user_id: Set(new.user_id),
            email: Set(new.email),
            username: Set(new.username),
            state: Set(new.state),
            created_at: Set(new.created_at),
            expires_at: Set(new.expires_at),
        })
        .exec_without_returning(self.db)
        .await
        .map(drop)
    }

    /// The challenge stored under `token_hash` for `purpose`, if it has not expired at `at`.
    pub async fn find_challenge(
        &self,
        token_hash: String,
        purpose: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<passkey_challenge::Model>, DbErr> {
        passkey_challenge::Entity::find()
            .filter(passkey_challenge::Column::TokenHash.eq(token_hash))
            .filter(passkey_challenge::Column::Purpose.eq(purpose))
            .filter(passkey_challenge::Column::ExpiresAt.gt(at))
            .one(self.db)
            .await
    }

    /// Spends challenge `id` with one conditional delete; `false` if it is gone or expired
    /// by `at`.
    pub async fn consume_challenge(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, DbErr> {
        let deleted = passkey_challenge::Entity::delete_many()
            .filter(passkey_challenge::Column::Id.eq(id))
            .filter(passkey_challenge::Column::ExpiresAt.gt(at))
            .exec(self.db)
            .await?;
        Ok(deleted.rows_affected == 1)
    }

    /// Deletes `user`'s challenges for `purpose` but the newest `keep`.
    pub async fn keep_newest_challenges(
        &self,
        user: Uuid,
        purpose: &str,
        keep: u64,
    ) -> Result<(), DbErr> {
        // No OFFSET alone (SQLite and MySQL want a LIMIT with it): the newest few ids,
        // the first `keep` of them skipped here. Begins keep it at `keep` + 1 between them,
        // so the limit is only a bound on what concurrent begins could leave.
        let newest: Vec<Uuid> = passkey_challenge::Entity::find()
            .select_only()
            .column(passkey_challenge::Column::Id)
            .filter(passkey_challenge::Column::UserId.eq(user))
            .filter(passkey_challenge::Column::Purpose.eq(purpose))
            .order_by_desc(passkey_challenge::Column::CreatedAt)
            .order_by_desc(passkey_challenge::Column::Id)
            .limit(keep + 256)
            .into_tuple()
            .all(self.db)
            .await?;
        let older: Vec<Uuid> = newest.into_iter().skip(keep as usize).collect();
        if older.is_empty() {
            return Ok(());
        }
        passkey_challenge::Entity::delete_many()
            .filter(passkey_challenge::Column::Id.is_in(older))
            .exec(self.db)
            .await
            .map(drop)
    }

    /// Deletes challenges that expired before `at`; returns how many.
    pub async fn delete_expired_challenges(&self, at: DateTime<Utc>) -> Result<u64, DbErr> {
        let deleted = passkey_challenge::Entity::delete_many()
            .filter(passkey_challenge::Column::ExpiresAt.lt(at))
            .exec(self.db)
            .await?;
        Ok(deleted.rows_affected)
    }
}
