//! The `mail_outbox` table: mails waiting to be sent, claimed by one worker at a time.
//!
//! A claim is `claimed_until` set in the future. Taking it is one transaction: on
//! PostgreSQL and MySQL the due rows are read `FOR UPDATE SKIP LOCKED` (a row another
//! instance is claiming is passed over, not waited for); SQLite has one writer, and the
//! claim starts as one (`BEGIN IMMEDIATE`). A worker that dies holding a claim lets it lapse:
//! once `claimed_until` is past, the row is due again.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, LockBehavior, LockType};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, SqliteTransactionMode,
    TransactionOptions,
};
use uuid::Uuid;

use super::Store;
use crate::entity::mail_outbox;
use crate::error::AuthError;
use crate::mail::{Mail, Sealer};

/// Mails deleted by one statement of [`Outbox::delete_of_user`].
const DELETE_CHUNK: usize = 1_000;

/// The `mail_outbox` table, on the pool or inside a write.
pub struct Outbox<'a, C> {
    db: &'a C,
}

impl<'a, C: ConnectionTrait> Outbox<'a, C> {
    pub(super) fn on(db: &'a C) -> Self {
        Self { db }
    }

    /// Queues `mail` about account `user` (if any), due at once, its bodies sealed by
    /// `sealer` (see `crate::mail::Sealer`). Inside a [`super::Write`], it is sent only if
    /// the change it announces commits.
    pub async fn enqueue(
        &self,
        mail: &Mail,
        sealer: &Sealer,
        user: Option<Uuid>,
        at: DateTime<Utc>,
    ) -> Result<Uuid, DbErr> {
        let id = Uuid::new_v4();
        mail_outbox::Entity::insert(mail_outbox::ActiveModel {
            id: Set(id),
            recipient: Set(mail.to.clone()),
            subject: Set(mail.subject.clone()),
            text_body: Set(sealer.seal(&mail.text)),
            html_body: Set(mail.html.as_deref().map(|html| sealer.seal(html))),
            created_at: Set(at),
            attempts: Set(0),
            next_attempt_at: Set(at),
            claimed_until: Set(None),
            last_error: Set(None),
            user_id: Set(user),
        })
        .exec_without_returning(self.db)
        .await
        .map(drop)?;
        Ok(id)
    }

    /// A sent mail leaves the outbox.
    pub async fn delivered(&self, id: Uuid) -> Result<(), DbErr> {
        mail_outbox::Entity::delete_by_id(id)
            .exec(self.db)
            .await
            .map(drop)
    }

    /// Records a failed attempt and releases the claim held until `claimed_until`: the row
    /// is due again at `retry_at`. A claim that lapsed and was taken by another worker is
    /// left to that worker.
    pub async fn failed(
        &self,
        id: Uuid,
        claimed_until: DateTime<Utc>,
        attempts: i32,
        error: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        mail_outbox::Entity::update_many()
            .col_expr(mail_outbox::Column::Attempts, Expr::value(attempts))
            .col_expr(mail_outbox::Column::LastError, Expr::value(error))
            .col_expr(mail_outbox::Column::NextAttemptAt, Expr::value(retry_at))
            .col_expr(
                mail_outbox::Column::ClaimedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(mail_outbox::Column::Id.eq(id))
            .filter(mail_outbox::Column::ClaimedUntil.eq(claimed_until))
            .exec(self.db)
            .await
            .map(drop)
    }

    /// Deletes the mails about account `user` not yet delivered (a worker sending one at
    /// this moment still sends it).
    ///
    /// The rows are found first and deleted by primary key: a delete through the
    /// `user_id` index would lock that index's entries before the rows, the opposite
    /// order to the worker's [`delivered`](Self::delivered), and MySQL would find a
    /// deadlock between the two. Inside the account's deletion, run it after the
    /// account's row is deleted: every write that queues mail about an account holds a
    /// lock on its row (a mailed token's foreign key, or an update), so by then each one
    /// has committed, and this read sees its mail.
    pub async fn delete_of_user(&self, user: Uuid) -> Result<(), DbErr> {
        let ids: Vec<Uuid> = mail_outbox::Entity::find()
            .select_only()
            .column(mail_outbox::Column::Id)
            .filter(mail_outbox::Column::UserId.eq(user))
            .into_tuple()
            .all(self.db)
            .await?;
        // In chunks: a statement binds at most 65,535 values on MySQL and PostgreSQL.
        for chunk in ids.chunks(DELETE_CHUNK) {
            mail_outbox::Entity::delete_many()
                .filter(mail_outbox::Column::Id.is_in(chunk.iter().copied()))
                .exec(self.db)
                .await?;
        }
        Ok(())
    }

    /// Mails not yet delivered (claimed or not).
    pub async fn count(&self) -> Result<u64, DbErr> {
        mail_outbox::Entity::find().count(self.db).await
    }
}

impl Store {
    pub fn outbox(&self) -> Outbox<'_, sea_orm::DatabaseConnection> {
        Outbox::on(&self.db)
    }

    /// Claims up to `limit` rows due at `at` until `at + lease`, oldest due first; no
    /// other worker gets them before the claim is released or lapses.
    pub async fn claim_mail(
        &self,
        at: DateTime<Utc>,
        lease: chrono::Duration,
        limit: u64,
    ) -> Result<Vec<mail_outbox::Model>, AuthError> {
        let unclaimed = Condition::any()
            .add(mail_outbox::Column::ClaimedUntil.is_null())
            .add(mail_outbox::Column::ClaimedUntil.lte(at));
        let due = mail_outbox::Entity::find()
            .filter(mail_outbox::Column::NextAttemptAt.lte(at))
            .filter(unclaimed.clone());
        // A plain read first: an idle outbox costs no transaction, and on SQLite takes no
        // write lock from the requests.
        if due.clone().one(&self.db).await?.is_none() {
            return Ok(Vec::new());
        }
        self.ensure_file()?;
        let backend = self.db.get_database_backend();
        let sqlite = backend == DatabaseBackend::Sqlite;
        // At READ COMMITTED, as every connection of `crate::db::connect` runs (PostgreSQL's
        // default; set on each MySQL connection): MySQL's REPEATABLE READ would keep the
        // locks of rows read but not taken, and their gaps, and deadlock with the statements
        // that queue mail and record other workers' sends.
        let txn = crate::storage::begin_uncancellable(
            &self.db,
            TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            },
        )
        .await?;
        let mut due = due
            .order_by_asc(mail_outbox::Column::NextAttemptAt)
            .limit(limit);
        if !sqlite {
            due = due.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let rows = due.all(&txn).await?;
        if rows.is_empty() {
            txn.rollback().await?;
            return Ok(rows);
        }
        let until = at + lease;
        let claimed = mail_outbox::Entity::update_many()
            .col_expr(mail_outbox::Column::ClaimedUntil, Expr::value(until))
            .filter(mail_outbox::Column::Id.is_in(rows.iter().map(|r| r.id)))
            .filter(unclaimed)
            .exec(&txn)
            .await?;
        // The rows are locked (or the database is): a shortfall would mean the lock did
        // not hold, and then taking nothing is the safe answer.
        if claimed.rows_affected != rows.len() as u64 {
            txn.rollback().await?;
            return Ok(Vec::new());
        }
        txn.commit().await?;
        self.ensure_file()?;
        Ok(rows
            .into_iter()
            .map(|mut row| {
                row.claimed_until = Some(until);
                row
            })
            .collect())
    }
}
