//! The `refresh_tokens` table: keyed hashes of issued refresh tokens.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult,
    IdenStatic, JoinType, QueryFilter, QuerySelect, QueryTrait, RelationTrait, SelectA, SelectB,
    SelectTwo,
};
use uuid::Uuid;

use super::sessions::{InlineRead, ServerRead};
use super::users::{ACCOUNT_COLUMNS, AccountRow, account};
use crate::auth::Account;
use crate::entity::{refresh_token, session, user};

/// How the pool's refresh read names the account's columns, beside sea-orm's `A_` (the
/// token) and `B_` (the session).
const ACCOUNT_PREFIX: &str = "C_";

/// The names of [`ACCOUNT_COLUMNS`], made once rather than on every refresh.
static ACCOUNT_NAMES: LazyLock<Vec<String>> = LazyLock::new(|| {
    ACCOUNT_COLUMNS
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect()
});

/// A refresh token found by its hash, with its session and the session's account, read
/// together: a rotation then writes without reading the account again (one statement
/// fewer on the SQLite group writer, one round trip fewer on MariaDB).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundRefresh {
    pub token: refresh_token::Model,
    pub session: session::Model,
    pub account: Account,
}

/// A new refresh-token row's id: time-ordered (UUIDv7), so that every token inserted
/// goes to the right-hand end of the primary key's index, where the tokens of one batch
/// (`rotations::group_commit`) share pages, instead of a random leaf each: about one page
/// fewer written per rotation on SQLite, and appends to InnoDB's clustered index instead
/// of page splits. The id never leaves the database (clients hold the token, the table
/// its keyed hash), so the time it carries tells no one anything.
pub(super) fn new_id() -> Uuid {
    Uuid::now_v7()
}

/// The pool's read of the token under `token_hash`, its session and the session's
/// account: the token and its session as `find_also_related` names them (`A_…`, `B_…`),
/// then the account's columns as `C_…` (no more of the user's row than that). The
/// direct read on PostgreSQL and MySQL/MariaDB (`ServerRead::refresh_with_session`) sends
/// this statement's text, so the pool and it, and `bench/dblimits`, send the same SQL.
pub(super) fn find_with_session(
    token_hash: String,
) -> SelectTwo<refresh_token::Entity, session::Entity> {
    let mut select = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(token_hash))
        .find_also_related(session::Entity)
        .join(JoinType::InnerJoin, session::Relation::User.def())
        .limit(1);
    for column in ACCOUNT_COLUMNS {
        select = select.column_as(
            Expr::col((user::Entity, column)),
            format!("{ACCOUNT_PREFIX}{}", column.as_str()),
        );
    }
    select
}

/// The `refresh_tokens` table, on the pool or inside a write.
pub struct RefreshTokens<'a, C> {
    db: &'a C,
    inline: Option<&'a InlineRead>,
    server: Option<&'a ServerRead>,
}

impl<'a, C: ConnectionTrait> RefreshTokens<'a, C> {
    /// The table on `db`; the refresh's read goes through `inline` (an SQLite file) or
    /// `server` (PostgreSQL, MySQL) when given, which must read what `db` holds.
    pub(super) fn on(
        db: &'a C,
        inline: Option<&'a InlineRead>,
        server: Option<&'a ServerRead>,
    ) -> Self {
        Self { db, inline, server }
    }

    /// Stores a session's new live token by its hash: a chain at `generation` (always 0
    /// from the server; see `auth::tokens::refresh`), or with `None` a token of the kind
    /// issued before chains.
    pub async fn insert(
        &self,
        session_id: Uuid,
        token_hash: String,
        generation: Option<i64>,
        at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        refresh_token::Entity::insert(refresh_token::ActiveModel {
            id: Set(new_id()),
            session_id: Set(session_id),
            token_hash: Set(token_hash),
            created_at: Set(at),
            expires_at: Set(expires_at),
            spent_at: Set(None),
            generation: Set(generation),
            rotated_at: Set(None),
        })
        .exec_without_returning(self.db)
        .await
        .map(|_| ())
    }

    /// The token stored under `token_hash`, its session and the session's account,
    /// whatever their state.
    pub async fn find_with_session(
        &self,
        token_hash: String,
    ) -> Result<Option<FoundRefresh>, DbErr> {
        if let Some(found) = self
            .inline
            .and_then(|inline| inline.refresh_with_session(&token_hash))
        {
            return Ok(found);
        }
        if let Some(server) = self.server {
            return server.refresh_with_session(&token_hash).await;
        }
        let statement = find_with_session(token_hash).build(self.db.get_database_backend());
        let Some(row) = self.db.query_one_raw(statement).await? else {
            return Ok(None);
        };
        Ok(Some(FoundRefresh {
            token: refresh_token::Model::from_query_result(&row, SelectA.as_str())?,
            session: session::Model::from_query_result(&row, SelectB.as_str())?,
            account: account(row.try_get_many::<AccountRow>(ACCOUNT_PREFIX, &ACCOUNT_NAMES)?),
        }))
    }

    /// Spends token `id` at `at` with one conditional update; `false` if it was spent
    /// already (by a concurrent request).
    pub async fn spend(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, DbErr> {
        let spent = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::SpentAt, Expr::value(at))
            .filter(refresh_token::Column::Id.eq(id))
            .filter(refresh_token::Column::SpentAt.is_null())
            .exec(self.db)
            .await?;
        Ok(spent.rows_affected == 1)
    }

    /// Moves chain `id` from generation `from` on to the next at `at`, its new live
    /// generation expiring at `expires_at`, with one conditional update; `false` if the
    /// chain had moved on already (a concurrent request spent generation `from`).
    pub async fn advance(
        &self,
        id: Uuid,
        from: i64,
        at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, DbErr> {
        let moved = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::Generation, Expr::value(from + 1))
            .col_expr(refresh_token::Column::RotatedAt, Expr::value(at))
            .col_expr(refresh_token::Column::ExpiresAt, Expr::value(expires_at))
            .filter(refresh_token::Column::Id.eq(id))
            .filter(refresh_token::Column::Generation.eq(from))
            .filter(refresh_token::Column::SpentAt.is_null())
            .exec(self.db)
            .await?;
        Ok(moved.rows_affected == 1)
    }

    /// Whether the token stored under `token_hash` is live at `at`, unspent and unexpired:
    /// for a chain, whether `generation` is its live one; with `None`, a token issued
    /// before chains.
    pub async fn is_live(
        &self,
        token_hash: String,
        generation: Option<i64>,
        at: DateTime<Utc>,
    ) -> Result<bool, DbErr> {
        let generation = match generation {
            Some(generation) => refresh_token::Column::Generation.eq(generation),
            None => refresh_token::Column::Generation.is_null(),
        };
        let found = refresh_token::Entity::find()
            .filter(refresh_token::Column::TokenHash.eq(token_hash))
            .filter(generation)
            .filter(refresh_token::Column::SpentAt.is_null())
            .filter(refresh_token::Column::ExpiresAt.gt(at))
            .one(self.db)
            .await?;
        Ok(found.is_some())
    }

    /// Deletes every token of session `session_id`, spent or not: presented again, each is
    /// unknown (`INVALID_REFRESH_TOKEN`), not a replay that would revoke the session.
    pub async fn delete_of_session(&self, session_id: Uuid) -> Result<(), DbErr> {
        refresh_token::Entity::delete_many()
            .filter(refresh_token::Column::SessionId.eq(session_id))
            .exec(self.db)
            .await
            .map(drop)
    }

    /// Deletes tokens that expired before `at`; returns how many.
    pub async fn delete_expired(&self, at: DateTime<Utc>) -> Result<u64, DbErr> {
        let deleted = refresh_token::Entity::delete_many()
            .filter(refresh_token::Column::ExpiresAt.lt(at))
            .exec(self.db)
            .await?;
        Ok(deleted.rows_affected)
    }
}
