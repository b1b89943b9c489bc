//! The `users` table, and `Account`'s columns, listed once.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, IntoCondition};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, QueryResult, QuerySelect, RelationTrait, Select,
};
use uuid::Uuid;

use crate::auth::Account;
use crate::entity::{session, user};

/// `Account`'s columns, in [`AccountRow`]'s order. The pool's selects and the inline SQLite
/// read (see `sessions`) both name these, so a new field of `Account` is added here, to
/// [`AccountRow`] and to [`account`], and nowhere else.
pub(super) const ACCOUNT_COLUMNS: [user::Column; 6] = [
    user::Column::Id,
    user::Column::Email,
    user::Column::Username,
    user::Column::CreatedAt,
    user::Column::UpdatedAt,
    user::Column::EmailVerifiedAt,
];

/// The values of [`ACCOUNT_COLUMNS`], as any backend returns them.
pub(super) type AccountRow = (
    Uuid,
    String,
    Option<String>,
    DateTime<Utc>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

/// The one mapping from a row to an [`Account`].
pub(super) fn account(
    (id, email, username, created_at, updated_at, email_verified_at): AccountRow,
) -> Account {
    Account {
        id,
        email,
        username,
        created_at,
        updated_at,
        email_verified_at,
    }
}

/// Selects the [`ACCOUNT_COLUMNS`] of users.
pub(super) fn accounts() -> Select<user::Entity> {
    user::Entity::find().select_only().columns(ACCOUNT_COLUMNS)
}

/// Selects the account of session `sid`, whatever the session's state.
pub(super) fn account_of_session(sid: Uuid) -> Select<user::Entity> {
    accounts()
        .join(sea_orm::JoinType::InnerJoin, user::Relation::Session.def())
        .filter(session::Column::Id.eq(sid))
}

/// An account and its password hash, for login.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub account: Account,
    pub password_hash: String,
}

impl FromQueryResult for Credentials {
    /// Reads `ACCOUNT_COLUMNS` then `password_hash`, by position.
    fn from_query_result(res: &QueryResult, _pre: &str) -> Result<Self, DbErr> {
        Ok(Self {
            account: account(res.try_get_many_by_index()?),
            password_hash: res.try_get_by_index(ACCOUNT_COLUMNS.len())?,
        })
    }
}

/// A user row about to be inserted.
pub struct NewUser<'a> {
    pub account: &'a Account,
    pub email_skeleton: String,
    pub username_normalized: Option<String>,
    pub password_hash: String,
}

/// The `users` table, on the pool or inside a write.
pub struct Users<'a, C> {
    db: &'a C,
}

impl<'a, C: ConnectionTrait> Users<'a, C> {
    pub(super) fn on(db: &'a C) -> Self {
        Self { db }
    }

    /// Whether an account has this email, or one with this look-alike key.
    pub async fn email_taken(&self, email: &str, skeleton: &str) -> Result<bool, DbErr> {
        self.any(
            Condition::any()
                .add(user::Column::Email.eq(email))
                .add(user::Column::EmailSkeleton.eq(skeleton)),
        )
        .await
    }

    /// Whether an account has this username (given normalised).
    pub async fn username_taken(&self, normalized: &str) -> Result<bool, DbErr> {
        self.any(user::Column::UsernameNormalized.eq(normalized))
            .await
    }

    /// Whether an account other than `me` has this email, or one with this look-alike key.
    pub async fn email_taken_by_other(
        &self,
        email: &str,
        skeleton: &str,
        me: Uuid,
    ) -> Result<bool, DbErr> {
        self.any(
            Condition::all().add(user::Column::Id.ne(me)).add(
                Condition::any()
                    .add(user::Column::Email.eq(email))
                    .add(user::Column::EmailSkeleton.eq(skeleton)),
            ),
        )
        .await
    }

    /// Whether a user matches `condition` (reads only the id).
    async fn any(&self, condition: impl IntoCondition) -> Result<bool, DbErr> {
        let found = user::Entity::find()
            .select_only()
            .column(user::Column::Id)
            .filter(condition)
            .into_tuple::<Uuid>()
            .one(self.db)
            .await?;
        Ok(found.is_some())
    }

    /// Inserts a user; a unique index refusing it is left to the caller to tell apart
    /// (see [`super::is_unique_violation`]).
    pub async fn insert(&self, new: NewUser<'_>) -> Result<(), DbErr> {
        let account = new.account;
        let row = user::ActiveModel {
            id: Set(account.id),
            email: Set(account.email.clone()),
            email_skeleton: Set(Some(new.email_skeleton)),
            username: Set(account.username.clone()),
            username_normalized: Set(new.username_normalized),
            password_hash: Set(new.password_hash),
            created_at: Set(account.created_at),
            updated_at: Set(account.updated_at),
            email_verified_at: Set(account.email_verified_at),
        };
        user::Entity::insert(row)
            .exec_without_returning(self.db)
            .await
            .map(|_| ())
    }

    /// The credentials of the account with this (normalised) email.
    pub async fn credentials_by_email(&self, email: &str) -> Result<Option<Credentials>, DbErr> {
        self.credentials(user::Column::Email.eq(email)).await
    }

    /// The credentials of the account with this normalised username.
    pub async fn credentials_by_username(
        &self,
        normalized: &str,
    ) -> Result<Option<Credentials>, DbErr> {
        self.credentials(user::Column::UsernameNormalized.eq(normalized))
            .await
    }

    /// The credentials of account `id`.
    pub async fn credentials_by_id(&self, id: Uuid) -> Result<Option<Credentials>, DbErr> {
        self.credentials(user::Column::Id.eq(id)).await
    }

    /// Account `id`.
    pub async fn by_id(&self, id: Uuid) -> Result<Option<Account>, DbErr> {
        let row = accounts()
            .filter(user::Column::Id.eq(id))
            .into_tuple::<AccountRow>()
            .one(self.db)
            .await?;
        Ok(row.map(account))
    }

    /// Marks account `id`'s address verified at `at`, if its address is still `email`;
    /// `false` if it is not (it changed since the token was mailed).
    pub async fn mark_verified(
        &self,
        id: Uuid,
        email: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, DbErr> {
        let updated = user::Entity::update_many()
            .col_expr(user::Column::EmailVerifiedAt, Expr::value(at))
            .col_expr(user::Column::UpdatedAt, Expr::value(at))
            .filter(user::Column::Id.eq(id))
            .filter(user::Column::Email.eq(email))
            .exec(self.db)
            .await?;
        Ok(updated.rows_affected == 1)
    }

    /// Gives account `id` a new, verified address; a unique index refusing it is left to
    /// the caller (another account took it meanwhile).
    pub async fn change_email(
        &self,
        id: Uuid,
        email: &str,
        skeleton: String,
        at: DateTime<Utc>,
    ) -> Result<bool, DbErr> {
        let updated = user::Entity::update_many()
            .col_expr(user::Column::Email, Expr::value(email))
            .col_expr(user::Column::EmailSkeleton, Expr::value(skeleton))
            .col_expr(user::Column::EmailVerifiedAt, Expr::value(at))
            .col_expr(user::Column::UpdatedAt, Expr::value(at))
            .filter(user::Column::Id.eq(id))
            .exec(self.db)
            .await?;
        Ok(updated.rows_affected == 1)
    }

    /// Replaces account `id`'s password hash.
    pub async fn set_password_hash(
        &self,
        id: Uuid,
        hash: String,
        at: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        user::Entity::update_many()
            .col_expr(user::Column::PasswordHash, Expr::value(hash))
            .col_expr(user::Column::UpdatedAt, Expr::value(at))
            .filter(user::Column::Id.eq(id))
            .exec(self.db)
            .await
            .map(drop)
    }

    /// Deletes account `id`; its sessions, their refresh tokens and its email tokens go
    /// with it (foreign keys, `ON DELETE CASCADE`). `false` if there was no such account.
    pub async fn delete(&self, id: Uuid) -> Result<bool, DbErr> {
        let deleted = user::Entity::delete_by_id(id).exec(self.db).await?;
        Ok(deleted.rows_affected == 1)
    }

    async fn credentials(
        &self,
        condition: impl IntoCondition,
    ) -> Result<Option<Credentials>, DbErr> {
        accounts()
            .column(user::Column::PasswordHash)
            .filter(condition)
            .into_model::<Credentials>()
            .one(self.db)
            .await
    }

    /// Replaces `user`'s password hash `old` by `new`; a no-op if it is no longer `old`.
    pub async fn replace_password_hash(
        &self,
        user: Uuid,
        old: &str,
        new: String,
    ) -> Result<(), DbErr> {
        user::Entity::update_many()
            .col_expr(user::Column::PasswordHash, Expr::value(new))
            .filter(user::Column::Id.eq(user))
            .filter(user::Column::PasswordHash.eq(old))
            .exec(self.db)
            .await
            .map(|_| ())
    }
}
