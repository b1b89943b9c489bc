//! The lookups by hash (refresh tokens, mailed tokens, MFA tickets, passkey challenges and
//! passkeys' credential ids) use their unique indexes on every backend, with the parameter typed as the server binds it (a Rust
//! string: `text` on PostgreSQL). On PostgreSQL the columns were `char(64)`, which a `text`
//! parameter cannot use the index of: every refresh and every mailed link read its whole
//! table. Hashes are `varchar(64)` since (`migration` 000010, 000011 for the tickets, 000012
//! for the passkeys).

use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};

use crate::backend_tests;
use crate::helpers::*;

/// The plan of `SELECT id FROM {table} WHERE {column} = <a string parameter>`, one line
/// per row of the backend's EXPLAIN.
async fn plan(db: &DatabaseConnection, backend: Backend, table: &str, column: &str) -> String {
    let explain = |sql: String| async move {
        let rows = db
            .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
            .await
            .expect("explain");
        rows.iter()
            .map(|row| {
                row.column_names()
                    .iter()
                    .map(|c| {
                        row.try_get::<Option<String>>("", c)
                            .ok()
                            .flatten()
                            .or_else(|| {
                                row.try_get::<Option<i64>>("", c)
                                    .ok()
                                    .flatten()
                                    .map(|n| n.to_string())
                            })
                            .unwrap_or_default()
                    })
                    .collect::<Vec<_>>()
                    .join(" | ")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    match backend {
        Backend::Postgres => {
            // As sqlx prepares it: the parameter typed `text`. With sequential scans made
            // as dear as they go, the planner takes the index whenever it can use it.
            db.execute_unprepared("SET enable_seqscan = off")
                .await
                .expect("set");
            db.execute_unprepared(&format!(
                "PREPARE lookup_{table}(text) AS SELECT id FROM {table} WHERE {column} = $1"
            ))
            .await
            .expect("prepare");
            explain(format!(
                "EXPLAIN EXECUTE lookup_{table}('0123456789abcdef')"
            ))
            .await
        }
        Backend::Mysql => {
            explain(format!(
                "EXPLAIN SELECT id FROM {table} WHERE {column} = '0123456789abcdef'"
            ))
            .await
        }
        Backend::Sqlite => {
            explain(format!(
                "EXPLAIN QUERY PLAN SELECT id FROM {table} WHERE {column} = '0123456789abcdef'"
            ))
            .await
        }
    }
}

async fn lookups_by_token_hash_use_their_unique_index(backend: Backend) {
    let app = spawn_app(backend).await;
    // One connection: PostgreSQL's PREPARE and SET belong to the session.
    let mut options = sea_orm::ConnectOptions::new(app.database_url.clone());
    options.max_connections(1).min_connections(1);
    let db = Database::connect(options).await.expect("connect");
    for (table, column) in [
        ("refresh_tokens", "token_hash"),
        ("email_tokens", "token_hash"),
        ("mfa_tickets", "token_hash"),
        ("passkey_challenges", "token_hash"),
        ("passkeys", "credential_hash"),
    ] {
        let plan = plan(&db, backend, table, column).await;
        let index = format!("uq_{table}_{column}");
        // MySQL/MariaDB read a unique-index lookup before planning the rest; finding no
        // row (the tables are empty) it says so instead of naming the index.
        let const_lookup = backend == Backend::Mysql
            && plan.contains("Impossible WHERE noticed after reading const tables");
        assert!(
            (plan.contains(&index) || const_lookup) && !plan.contains("Seq Scan"),
            "{table}: the lookup by hash does not use {index}:\n{plan}"
        );
    }
}

backend_tests!(lookups_by_token_hash_use_their_unique_index);
