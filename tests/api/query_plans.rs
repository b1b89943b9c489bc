//! The lookups by hash (refresh tokens, mailed tokens, MFA tickets, passkey challenges and
//! passkeys' credential ids) use their unique indexes on every backend, with the parameter typed as the server binds it (a Rust
//! string: `text` on PostgreSQL). On PostgreSQL the columns were `char(64)`, which a `text`
//! parameter cannot use the index of: every refresh and every mailed link read its whole
//! table. Hashes are `varchar(64)` since (`migration` 000010, 000011 for the tickets, 000012
//! for the passkeys).

use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};

use crate::backend_tests;
use crate::helpers::*;

/// The rows of `sql` (an EXPLAIN), one line per row, its columns joined by `|`.
async fn explain(db: &DatabaseConnection, sql: String) -> String {
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
}

/// The plan of `SELECT id FROM {table} WHERE {column} = <a string parameter>`, one line
/// per row of the backend's EXPLAIN.
async fn plan(db: &DatabaseConnection, backend: Backend, table: &str, column: &str) -> String {
    let explain = |sql: String| explain(db, sql);
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

/// The guard's batched read (`sessions::server_read`: the sessions of many requests in one
/// statement) finds its rows by the sessions' primary key, with the ids bound as the server
/// binds them (a `uuid[]` on PostgreSQL, a list on MySQL/MariaDB), not by a scan.
/// (Against a scan of `sessions` with `enable_seqscan` off on PostgreSQL, and an `IN` on
/// MySQL/MariaDB that the optimizer reads as a range of the primary key.)
async fn the_guards_batched_session_read_uses_the_primary_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut options = sea_orm::ConnectOptions::new(app.database_url.clone());
    options.max_connections(1).min_connections(1);
    let db = Database::connect(options).await.expect("connect");
    let ids = [
        "018f0a6e-7c1a-7b3e-9a4e-0123456789ab",
        "018f0a6e-7c1a-7b3e-9a4e-0123456789ac",
    ];
    let sql = match backend {
        Backend::Postgres => {
            db.execute_unprepared("SET enable_seqscan = off")
                .await
                .expect("set");
            db.execute_unprepared(
                "PREPARE batch(uuid[]) AS SELECT s.id, s.expires_at, u.email FROM sessions s \
                 INNER JOIN users u ON u.id = s.user_id \
                 WHERE s.id = ANY($1) AND s.revoked_at IS NULL",
            )
            .await
            .expect("prepare");
            format!("EXPLAIN EXECUTE batch('{{{}}}')", ids.join(","))
        }
        Backend::Mysql => format!(
            "EXPLAIN SELECT s.id, s.expires_at, u.email FROM sessions s \
             INNER JOIN users u ON u.id = s.user_id \
             WHERE s.id IN ('{}', '{}') AND s.revoked_at IS NULL",
            ids[0], ids[1]
        ),
        Backend::Sqlite => format!(
            "EXPLAIN QUERY PLAN SELECT s.id, s.expires_at, u.email FROM sessions s \
             INNER JOIN users u ON u.id = s.user_id \
             WHERE s.id IN ('{}', '{}') AND s.revoked_at IS NULL",
            ids[0], ids[1]
        ),
    };
    let plan = explain(&db, sql).await;
    let by_key = match backend {
        Backend::Postgres => plan.contains("Index Scan on sessions_pkey"),
        Backend::Mysql => plan
            .lines()
            .next()
            .is_some_and(|s| s.contains("| s | range |") && s.contains("| PRIMARY |")),
        // SQLite's guard reads inline, one session at a time; the same statement would
        // still find its rows by key.
        Backend::Sqlite => plan.contains("SEARCH s USING INDEX sqlite_autoindex_sessions_1"),
    };
    assert!(
        by_key && !plan.contains("Seq Scan") && !plan.contains("SCAN s\n"),
        "the batched read of sessions does not use their primary key:\n{plan}"
    );
}

backend_tests!(
    lookups_by_token_hash_use_their_unique_index,
    the_guards_batched_session_read_uses_the_primary_key,
);
