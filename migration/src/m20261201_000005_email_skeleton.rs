//! Adds `users.email_skeleton`, the look-alike key of the address, under a unique index, so
//! no two accounts can have addresses that display alike; normalises stored addresses.
//!
//! Existing rows are backfilled in Rust (the key is [`crate::email_key::skeleton_key`]):
//! rows whose stored address is already normalised claim their key first, oldest first,
//! then the others, whose address is rewritten to its normalised form (NFC) so that login,
//! which normalises what it is given, still finds them. A row whose key an older row holds,
//! or whose normalised address another row has, is left as it is with a NULL key (a unique
//! index allows any number of NULLs on every backend): both accounts keep working, and the
//! count is logged so the operator can review them
//! (`SELECT id, email FROM users WHERE email_skeleton IS NULL`).

use std::collections::HashSet;

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

use crate::email_key::{normalise, skeleton_key};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Email,
    EmailSkeleton,
    CreatedAt,
}

const INDEX: &str = "uq_users_email_skeleton";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // MySQL and SQLite run a migration outside a transaction: a retry after a failure
        // half-way finds the column there already.
        if !manager.has_column("users", "email_skeleton").await? {
            let mut column = ColumnDef::new(Users::EmailSkeleton);
            if manager.get_database_backend() == DatabaseBackend::MySql {
                // Hex digits, compared byte for byte (see m20261122_000004).
                column.custom(Alias::new(
                    "VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin",
                ));
            } else {
                column.string_len(64);
            }
            column.null();
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        backfill(manager).await?;
        if !manager.has_index("users", INDEX).await? {
            manager
                .create_index(
                    Index::create()
                        .name(INDEX)
                        .table(Users::Table)
                        .col(Users::EmailSkeleton)
                        .unique()
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name(INDEX).table(Users::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::EmailSkeleton)
                    .to_owned(),
            )
            .await
    }
}

/// Sets every row's key, and normalises its address where that collides with nothing.
async fn backfill(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let rows = db
        .query_all(
            &Query::select()
                .column(Users::Email)
                .from(Users::Table)
                .order_by(Users::CreatedAt, Order::Asc)
                .order_by(Users::Email, Order::Asc)
                .to_owned(),
        )
        .await?;
    let stored: Vec<String> = rows
        .iter()
        .map(|row| row.try_get::<String>("", "email"))
        .collect::<Result<_, _>>()?;
    let mut emails: HashSet<String> = stored.iter().cloned().collect();
    let (normalised, others): (Vec<&String>, Vec<&String>) =
        stored.iter().partition(|email| normalise(email) == **email);

    let mut keys = HashSet::with_capacity(stored.len());
    let mut left_out = 0usize;
    for email in normalised {
        let key = skeleton_key(email);
        let key = keys.insert(key.clone()).then_some(key);
        left_out += usize::from(key.is_none());
        set(db, email, email, key).await?;
    }
    for email in others {
        let target = normalise(email);
        let key = skeleton_key(&target);
        if keys.contains(&key) || emails.contains(&target) {
            left_out += 1;
            set(db, email, email, None).await?;
            continue;
        }
        keys.insert(key.clone());
        emails.insert(target.clone());
        set(db, email, &target, Some(key)).await?;
    }
    if left_out > 0 {
        tracing::warn!(
            accounts = left_out,
            "accounts whose address looks like an older account's were left without a \
             look-alike key; review them: SELECT id, email FROM users WHERE email_skeleton IS NULL"
        );
    }
    Ok(())
}

/// Gives the row at `email` the address `target` and the look-alike key `key`.
async fn set(
    db: &impl ConnectionTrait,
    email: &str,
    target: &str,
    key: Option<String>,
) -> Result<(), DbErr> {
    db.execute(
        &Query::update()
            .table(Users::Table)
            .value(Users::Email, target)
            .value(Users::EmailSkeleton, key)
            .and_where(Expr::col(Users::Email).eq(email))
            .to_owned(),
    )
    .await
    .map(|_| ())
}
