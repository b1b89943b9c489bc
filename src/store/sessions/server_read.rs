//! The guard's session read on PostgreSQL and MySQL/MariaDB, through sqlx directly.
//!
//! Every authenticated request asks one question: is this session live, and whose is it.
//! Through sea-orm, each ask built the statement with sea-query, turned its values into
//! sea-orm's and then sqlx's, and decoded the row through sea-orm's generic result: work
//! that costs about as much as the database's own answer on these two cores (see
//! `bench/FINDINGS.md`, issue 17). Here the statement is a fixed string, prepared once per
//! connection by sqlx's statement cache, bound and decoded as sqlx's own types, on the same
//! pool (so the same limits, timeouts and connection hooks hold).

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sea_orm::sqlx::{AssertSqlSafe, MySqlPool, PgPool};
use sea_orm::{DatabaseBackend, DatabaseConnection, DbErr, IdenStatic, RuntimeErr};
use uuid::Uuid;

use crate::auth::Account;
use crate::store::users::{ACCOUNT_COLUMNS, AccountRow, account};

/// The pool the guard reads from directly.
pub(in crate::store) enum ServerRead {
    Postgres(PgPool),
    MySql(MySqlPool),
}

impl ServerRead {
    /// The direct read for `db`'s pool; `None` on SQLite (which has the inline read).
    pub(in crate::store) fn of(db: &DatabaseConnection) -> Option<Self> {
        match db.get_database_backend() {
            DatabaseBackend::Postgres => {
                Some(Self::Postgres(db.get_postgres_connection_pool().clone()))
            }
            DatabaseBackend::MySql => Some(Self::MySql(db.get_mysql_connection_pool().clone())),
            _ => None,
        }
    }

    /// The account of session `sid` if it is live at `at`: the same join, columns and
    /// conditions as the pool's query in `Sessions::live_account`.
    pub(in crate::store) async fn live_account(
        &self,
        sid: Uuid,
        at: DateTime<Utc>,
    ) -> Result<Option<Account>, DbErr> {
        let row = match self {
            Self::Postgres(pool) => {
                sea_orm::sqlx::query_as::<_, AccountRow>(AssertSqlSafe(POSTGRES.as_str()))
                    .bind(sid)
                    .bind(at)
                    .fetch_optional(pool)
                    .await
            }
            Self::MySql(pool) => {
                sea_orm::sqlx::query_as::<_, AccountRow>(AssertSqlSafe(MYSQL.as_str()))
                    .bind(sid)
                    .bind(at)
                    .fetch_optional(pool)
                    .await
            }
        };
        row.map(|row| row.map(account))
            .map_err(|e| DbErr::Query(RuntimeErr::SqlxError(e.into())))
    }
}

/// The guard's statement with identifiers quoted by `quote` and parameters `first` and
/// `second`: a fixed text (names of our own, values only ever bound), hence `AssertSqlSafe`.
fn live_account_sql(quote: char, first: &str, second: &str) -> String {
    let columns: Vec<String> = ACCOUNT_COLUMNS
        .iter()
        .map(|c| format!("u.{quote}{}{quote}", c.as_str()))
        .collect();
    let q = |name: &str| format!("{quote}{name}{quote}");
    format!(
        "SELECT {} FROM {} s INNER JOIN {} u ON u.{} = s.{} \
         WHERE s.{} = {first} AND s.{} IS NULL AND s.{} > {second} LIMIT 1",
        columns.join(", "),
        q("sessions"),
        q("users"),
        q("id"),
        q("user_id"),
        q("id"),
        q("revoked_at"),
        q("expires_at"),
    )
}

static POSTGRES: LazyLock<String> = LazyLock::new(|| live_account_sql('"', "$1", "$2"));

static MYSQL: LazyLock<String> = LazyLock::new(|| live_account_sql('`', "?", "?"));
