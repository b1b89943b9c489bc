//! Every query the server makes, one file per table, and the discipline of writes.
//!
//! A write is acknowledged only once it is in the SQLite file the next start opens: every
//! write checks [`DatabaseFile`] before it starts and after it commits (see
//! `crate::storage`). Multi-statement writes go through [`Store::begin_write`] and
//! [`Store::commit_write`]; single statements on the pool call [`Store::ensure_file`]
//! around themselves.
//!
//! The conditional updates of different tables read alike on purpose (spend a token, extend
//! a session: one `UPDATE … WHERE` each, its row count the answer): each names the one
//! question a flow asks of its table.

mod batch;
mod email_tokens;
mod outbox;
mod passkeys;
mod refresh_tokens;
mod rotations;
mod second_factors;
mod security_events;
mod sessions;
mod signing_keys;
mod users;
mod warm;

use std::sync::Arc;

use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, SqlErr};

pub use email_tokens::{EmailTokens, NewEmailToken};
pub use outbox::Outbox;
pub use passkeys::{NewPasskey, NewPasskeyChallenge, Passkeys};
pub use refresh_tokens::{FoundRefresh, RefreshTokens};
pub use rotations::{Decide, Refreshed, Rotated, Rotation, Step};
pub use second_factors::{NewMfaTicket, SecondFactors};
pub use security_events::{EventCursor, SecurityEvents};
pub use sessions::Sessions;
pub use signing_keys::SigningKeys;
pub use users::{Credentials, NewUser, Users};

use crate::error::AuthError;
use crate::storage::DatabaseFile;

/// The database as the auth service sees it.
pub struct Store {
    db: DatabaseConnection,
    /// The SQLite file opened at start: a write is refused, not acknowledged, once the file
    /// at its path is another one (or none).
    file: Option<Arc<DatabaseFile>>,
    /// The guard's read without the pool's thread hand-offs, on an SQLite file.
    inline: Option<sessions::InlineRead>,
    /// The guard's read through sqlx directly and in batches, and the refresh's read
    /// through sqlx directly, on PostgreSQL and MySQL/MariaDB.
    server: Option<sessions::ServerRead>,
    /// Rotations committed in groups, on an SQLite file (see [`Store::with_group_commit`]).
    group_commit: Option<rotations::GroupCommit>,
}

impl Store {
    /// The store of `db`, connected to `url` (call it after migrating: the SQLite file must
    /// exist for its identity to be taken and for the inline read).
    pub fn new(db: DatabaseConnection, url: &str) -> Self {
        Self {
            file: DatabaseFile::for_url(url).map(Arc::new),
            inline: sessions::InlineRead::for_url(url),
            server: sessions::ServerRead::of(&db),
            group_commit: None,
            db,
        }
    }

    /// On an SQLite file, commits rotations in groups from now on (see
    /// `rotations::group_commit`), waiting at most `busy_timeout` for the write lock.
    /// Elsewhere, or if the writer thread cannot start (logged), each rotation is its own
    /// transaction.
    pub async fn with_group_commit(mut self, busy_timeout: std::time::Duration) -> Self {
        let Some(file) = self.file.clone() else {
            return self;
        };
        // The pool's page limit (an operator's or a test's `max_page_count`) holds for the
        // writer too.
        let page_limit = self
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DatabaseBackend::Sqlite,
                "PRAGMA max_page_count",
            ))
            .await
            .ok()
            .flatten()
            .and_then(|row| row.try_get_by_index::<i64>(0).ok());
        let path = file.path().to_path_buf();
        match rotations::GroupCommit::start(path, busy_timeout, page_limit, Some(file)) {
            Ok(group) => self.group_commit = Some(group),
            Err(error) => tracing::warn!(%error,
                "the SQLite group-commit writer did not start; each rotation commits alone"),
        }
        self
    }

    pub fn users(&self) -> Users<'_, DatabaseConnection> {
        Users::on(&self.db)
    }

    pub fn sessions(&self) -> Sessions<'_, DatabaseConnection> {
        Sessions::on(&self.db, self.inline.as_ref(), self.server.as_ref())
    }

    pub fn refresh_tokens(&self) -> RefreshTokens<'_, DatabaseConnection> {
        RefreshTokens::on(&self.db, self.inline.as_ref(), self.server.as_ref())
    }

    pub fn email_tokens(&self) -> EmailTokens<'_, DatabaseConnection> {
        EmailTokens::on(&self.db)
    }

    pub fn signing_keys(&self) -> SigningKeys<'_, DatabaseConnection> {
        SigningKeys::on(&self.db)
    }

    pub fn security_events(&self) -> SecurityEvents<'_, DatabaseConnection> {
        SecurityEvents::on(&self.db, None)
    }

    /// The SQLite file this store writes to, for `/health` to watch too.
    pub fn database_file(&self) -> Option<Arc<DatabaseFile>> {
        self.file.clone()
    }

    /// Refuses a write while the SQLite file at the configured path is not the one opened
    /// (deleted or replaced): it would go into an unlinked file that no restart finds.
    pub fn ensure_file(&self) -> Result<(), AuthError> {
        match &self.file {
            Some(file) => file.check().map_err(AuthError::internal),
            None => Ok(()),
        }
    }

    /// Begins a write transaction, if the database file is still ours.
    pub async fn begin_write(&self) -> Result<Write, AuthError> {
        self.ensure_file()?;
        // MySQL/MariaDB connections run at READ COMMITTED, set once per connection
        // (`crate::db::connect`), as PostgreSQL does by default.
        let options = sea_orm::TransactionOptions::default();
        Ok(Write {
            txn: crate::storage::begin_uncancellable(&self.db, options).await?,
            recorded: std::sync::Mutex::default(),
        })
    }

    /// Commits, and succeeds only if the commit did and the file is still ours: a write is
    /// acknowledged only once it is in the file that the next start opens. The security
    /// events it carries are announced (logged, counted) then.
    pub async fn commit_write(&self, write: Write) -> Result<(), AuthError> {
        write.txn.commit().await?;
        self.ensure_file()?;
        let recorded = write.recorded.into_inner().unwrap_or_default();
        recorded.iter().for_each(crate::auth::events::announce);
        Ok(())
    }
}

/// An open write transaction: the tables, inside it.
pub struct Write {
    txn: DatabaseTransaction,
    /// The security events inserted, announced when it commits.
    recorded: std::sync::Mutex<Vec<crate::entity::security_event::Model>>,
}

impl Write {
    pub fn users(&self) -> Users<'_, DatabaseTransaction> {
        Users::on(&self.txn)
    }

    /// Sessions inside the transaction: never the inline read, which cannot see it.
    pub fn sessions(&self) -> Sessions<'_, DatabaseTransaction> {
        Sessions::on(&self.txn, None, None)
    }

    /// Refresh tokens inside the transaction: never the inline read, which cannot see it.
    pub fn refresh_tokens(&self) -> RefreshTokens<'_, DatabaseTransaction> {
        RefreshTokens::on(&self.txn, None, None)
    }

    pub fn email_tokens(&self) -> EmailTokens<'_, DatabaseTransaction> {
        EmailTokens::on(&self.txn)
    }

    /// The outbox inside the transaction: a mail queued here goes out only if it commits.
    pub fn outbox(&self) -> Outbox<'_, DatabaseTransaction> {
        Outbox::on(&self.txn)
    }

    pub fn signing_keys(&self) -> SigningKeys<'_, DatabaseTransaction> {
        SigningKeys::on(&self.txn)
    }

    /// Security events inside the transaction: stored only if it commits.
    pub fn security_events(&self) -> SecurityEvents<'_, DatabaseTransaction> {
        SecurityEvents::on(&self.txn, Some(&self.recorded))
    }

    pub async fn rollback(self) -> Result<(), DbErr> {
        self.txn.rollback().await
    }
}

/// Whether `e` is a unique index refusing a row (a value another row already has).
pub fn is_unique_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

#[cfg(test)]
mod tests;
