//! The `sessions` table, and the guard's read of it: inline on an SQLite file, else the pool.

mod server_read;
mod sqlite_read;

pub(super) use server_read::{Connection, ServerRead, sqlx_error};

pub(super) use sqlite_read::{SqliteReader, sqlx_instant};

use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::users::{AccountRow, account, account_of_session};
use crate::auth::{Account, Client};
use crate::entity::session;

/// The inline SQLite reader, and whether its failure has been logged (once is enough).
pub(super) struct InlineRead {
    pub(super) reader: sqlite_read::SqliteReader,
    pub(super) failed: AtomicBool,
}

impl InlineRead {
    pub(super) fn for_url(url: &str) -> Option<Self> {
        Some(Self {
            reader: sqlite_read::SqliteReader::for_url(url)?,
            failed: AtomicBool::new(false),
        })
    }

    /// `None` when the read failed and the pool must answer.
    pub(super) fn live_account(&self, sid: Uuid, at: DateTime<Utc>) -> Option<Option<Account>> {
        self.read(|reader| reader.live_account(sid, at))
    }

    /// `None` when the read failed and the pool must answer.
    pub(super) fn refresh_with_session(
        &self,
        token_hash: &str,
    ) -> Option<Option<super::refresh_tokens::FoundRefresh>> {
        self.read(|reader| reader.refresh_with_session(token_hash))
    }

    /// `read` on the reader; `None` (logged) when it failed.
    fn read<T>(
        &self,
        read: impl FnOnce(&sqlite_read::SqliteReader) -> rusqlite::Result<T>,
    ) -> Option<T> {
        match read(&self.reader) {
            Ok(found) => Some(found),
            Err(error) => {
                if !self.failed.swap(true, Ordering::Relaxed) {
                    tracing::warn!(%error, path = %self.reader.path().display(),
                        "inline SQLite read failed; using the pool (logged once)");
                } else {
                    tracing::debug!(%error, "inline SQLite read failed; using the pool");
                }
                None
            }
        }
    }
}

/// The account of session `sid` if it is live at `at`: the guard's query on the pool.
fn live_account_query(
    sid: Uuid,
    at: DateTime<Utc>,
) -> sea_orm::Select<crate::entity::user::Entity> {
    account_of_session(sid)
        .filter(session::Column::RevokedAt.is_null())
        .filter(session::Column::ExpiresAt.gt(at))
}

/// The `sessions` table, on the pool (with the guard's direct read when there is one) or
/// inside a write.
pub struct Sessions<'a, C> {
    db: &'a C,
    inline: Option<&'a InlineRead>,
    server: Option<&'a ServerRead>,
}

impl<'a, C: ConnectionTrait> Sessions<'a, C> {
    /// The table on `db`; the guard reads through `inline` (an SQLite file) or `server`
    /// (PostgreSQL, MySQL) when given, which must read what `db` holds.
    pub(super) fn on(
        db: &'a C,
        inline: Option<&'a InlineRead>,
        server: Option<&'a ServerRead>,
    ) -> Self {
        Self { db, inline, server }
    }

    /// The account of session `sid` if the session is live at `at`. By the session's
    /// primary key alone (see `sqlite_read::LIVE_ACCOUNT` for why): the caller compares
    /// the user.
    pub async fn live_account(
        &self,
        sid: Uuid,
        at: DateTime<Utc>,
    ) -> Result<Option<Account>, DbErr> {
        if let Some(found) = self.inline.and_then(|inline| inline.live_account(sid, at)) {
            return Ok(found);
        }
        if let Some(server) = self.server {
            return server.live_account(sid, at).await;
        }
        let row = live_account_query(sid, at)
            .into_tuple::<AccountRow>()
            .one(self.db)
            .await?;
        Ok(row.map(account))
    }

    /// Opens a session of `user_id` at `at` for `client`, authenticated by `amr`
    /// (space-separated RFC 8176 values).
    pub async fn insert(
        &self,
        id: Uuid,
        user_id: Uuid,
        at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        client: &Client,
        amr: &str,
    ) -> Result<(), DbErr> {
        session::Entity::insert(session::ActiveModel {
            id: Set(id),
            user_id: Set(user_id),
            created_at: Set(at),
            expires_at: Set(expires_at),
            revoked_at: Set(None),
            last_used_at: Set(Some(at)),
            created_ip: Set(client.ip_text()),
            created_user_agent: Set(client.user_agent.clone()),
            last_ip: Set(client.ip_text()),
            last_user_agent: Set(client.user_agent.clone()),
            amr: Set(Some(amr.to_owned())),
        })
        .exec_without_returning(self.db)
        .await
        .map(|_| ())
    }

    /// How session `id` was authenticated (its stored `amr`), if it exists.
    pub async fn amr_of(&self, id: Uuid) -> Result<Option<Option<String>>, DbErr> {
        session::Entity::find_by_id(id)
            .select_only()
            .column(session::Column::Amr)
            .into_tuple::<Option<String>>()
            .one(self.db)
            .await
    }

    /// Moves an unrevoked session's expiry to `expires_at`; `false` if it was revoked.
    pub async fn extend(&self, id: Uuid, expires_at: DateTime<Utc>) -> Result<bool, DbErr> {
        let extended = session::Entity::update_many()
            .col_expr(session::Column::ExpiresAt, Expr::value(expires_at))
            .filter(session::Column::Id.eq(id))
            .filter(session::Column::RevokedAt.is_null())
            .exec(self.db)
            .await?;
        Ok(extended.rows_affected == 1)
    }

    /// A refresh of an unrevoked session by `client` at `at`: its expiry moves to
    /// `expires_at` and its last use to `at`. `false` if it was revoked.
    pub async fn refreshed(
        &self,
        id: Uuid,
        expires_at: DateTime<Utc>,
        at: DateTime<Utc>,
        client: &Client,
    ) -> Result<bool, DbErr> {
        let refreshed = session::Entity::update_many()
            .col_expr(session::Column::ExpiresAt, Expr::value(expires_at))
            .col_expr(session::Column::LastUsedAt, Expr::value(at))
            .col_expr(session::Column::LastIp, Expr::value(client.ip_text()))
            .col_expr(
                session::Column::LastUserAgent,
                Expr::value(client.user_agent.clone()),
            )
            .filter(session::Column::Id.eq(id))
            .filter(session::Column::RevokedAt.is_null())
            .exec(self.db)
            .await?;
        Ok(refreshed.rows_affected == 1)
    }

    /// The live sessions of `user` at `at`, newest first, at most `limit`.
    pub async fn live_of(
        &self,
        user: Uuid,
        at: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<session::Model>, DbErr> {
        session::Entity::find()
            .filter(session::Column::UserId.eq(user))
            .filter(session::Column::RevokedAt.is_null())
            .filter(session::Column::ExpiresAt.gt(at))
            .order_by_desc(session::Column::CreatedAt)
            .order_by_desc(session::Column::Id)
            .limit(limit)
            .all(self.db)
            .await
    }

    /// Revokes session `id` at `at` if it is a live session of `user`; whether it was.
    pub async fn revoke_of(&self, id: Uuid, user: Uuid, at: DateTime<Utc>) -> Result<bool, DbErr> {
        let revoked = session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::value(at))
            .filter(session::Column::Id.eq(id))
            .filter(session::Column::UserId.eq(user))
            .filter(session::Column::RevokedAt.is_null())
            .filter(session::Column::ExpiresAt.gt(at))
            .exec(self.db)
            .await?;
        Ok(revoked.rows_affected == 1)
    }

    /// Revokes these sessions at `at` (those not revoked already).
    pub async fn revoke(
        &self,
        ids: impl IntoIterator<Item = Uuid>,
        at: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        self.revoke_where(session::Column::Id.is_in(ids), at).await
    }

    /// Revokes every session of these users at `at` (those not revoked already).
    pub async fn revoke_all_of(
        &self,
        users: impl IntoIterator<Item = Uuid>,
        at: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        self.revoke_where(session::Column::UserId.is_in(users), at)
            .await
    }

    /// Revokes every session of `user` but `keep` at `at`.
    pub async fn revoke_all_of_except(
        &self,
        user: Uuid,
        keep: Uuid,
        at: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        self.revoke_where(
            Condition::all()
                .add(session::Column::UserId.eq(user))
                .add(session::Column::Id.ne(keep)),
            at,
        )
        .await
    }

    async fn revoke_where(
        &self,
        filter: impl sea_orm::sea_query::IntoCondition,
        at: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::value(at))
            .filter(filter)
            .filter(session::Column::RevokedAt.is_null())
            .exec(self.db)
            .await
            .map(|_| ())
    }

    /// Deletes sessions that expired or were revoked before `cutoff` (their refresh tokens
    /// go with them); returns how many.
    pub async fn delete_dead_before(&self, cutoff: DateTime<Utc>) -> Result<u64, DbErr> {
        let deleted = session::Entity::delete_many()
            .filter(
                Condition::any()
                    .add(session::Column::ExpiresAt.lt(cutoff))
                    .add(session::Column::RevokedAt.lt(cutoff)),
            )
            .exec(self.db)
            .await?;
        Ok(deleted.rows_affected)
    }
}

#[cfg(test)]
pub(super) use sqlite_read::LIVE_ACCOUNT;

#[cfg(test)]
pub(super) fn pool_live_account_query(
    sid: Uuid,
    at: DateTime<Utc>,
) -> sea_orm::Select<crate::entity::user::Entity> {
    live_account_query(sid, at)
}
