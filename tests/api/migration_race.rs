//! Instances started at the same moment on an empty database: the migrations run once,
//! under a lock shared by the processes, and every instance starts; a lock held too long
//! ends the wait with a clear error.

use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, Statement};

use crate::backend_tests;
use crate::helpers::*;
use crate::server_process::{ServerProcess, spawn};

/// Every migration the binary knows, in order: each must be recorded exactly once.
fn migrations() -> Vec<String> {
    use migration::MigratorTrait;
    migration::Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect()
}

/// The rows of the migration table, in order.
async fn recorded_migrations(db: &DatabaseConnection) -> Vec<String> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT version FROM seaql_migrations ORDER BY version",
        ))
        .await
        .expect("read the migration table");
    rows.iter()
        .map(|r| r.try_get_by_index::<String>(0).expect("version"))
        .collect()
}

async fn instances_started_at_once_on_an_empty_database_all_start_and_migrate_once(
    backend: Backend,
) {
    let (_guard, url) = create_database(backend).await;
    let dir = tempfile::tempdir().expect("temp dir");
    // Three servers and one `migrate up`, started together.
    let mut servers: Vec<ServerProcess> = (0..3)
        .map(|_| spawn(dir.path(), &url, &["serve"], &[], &[]))
        .collect();
    let mut migrate = spawn(dir.path(), &url, &["migrate", "up"], &[], &[]);
    for server in &mut servers {
        server.wait_healthy(Duration::from_secs(20)).await;
    }
    let status = migrate.wait_exit(Duration::from_secs(20)).await;
    assert!(status.success(), "migrate up failed:\n{}", migrate.output());

    let db = Database::connect(&url).await.expect("connect");
    assert_eq!(recorded_migrations(&db).await, migrations());
    db.close().await.ok();
    // Each server works on the schema it found.
    for server in &servers {
        let resp = reqwest::Client::new()
            .post(server.url("/graphql"))
            .json(&serde_json::json!({
                "query": "mutation($i: RegisterInput!) { register(input: $i) { user { id } } }",
                "variables": {"i": {
                    "email": format!("{}@example.com", uuid::Uuid::new_v4().simple()),
                    "password": PASSWORD,
                }},
            }))
            .send()
            .await
            .expect("register");
        let body: serde_json::Value = resp.json().await.expect("JSON");
        assert!(body["data"]["register"]["user"]["id"].is_string(), "{body}");
    }
}

/// Development instances with stored keys, started together on an empty database: one of
/// them makes the first signing key (under the migration lock), and every instance accepts
/// the access tokens of every other from the start.
async fn instances_started_at_once_make_one_first_signing_key_between_them(backend: Backend) {
    let (_guard, url) = create_database(backend).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let kek = [("KEY_ENCRYPTION_KEY", crate::keys::KEK)];
    let mut servers: Vec<ServerProcess> = (0..3)
        .map(|_| spawn(dir.path(), &url, &["serve"], &kek, &[]))
        .collect();
    for server in &mut servers {
        server.wait_healthy(Duration::from_secs(20)).await;
    }
    let db = Database::connect(&url).await.expect("connect");
    let keys = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT kid FROM signing_keys",
        ))
        .await
        .expect("read the signing keys");
    db.close().await.ok();
    assert_eq!(
        keys.len(),
        1,
        "instances started together made {} keys",
        keys.len()
    );

    let client = reqwest::Client::new();
    for server in &servers {
        let body: serde_json::Value = client
            .post(server.url("/graphql"))
            .json(&serde_json::json!({
                "query": "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }",
                "variables": {"i": {
                    "email": format!("{}@example.com", uuid::Uuid::new_v4().simple()),
                    "password": PASSWORD,
                }},
            }))
            .send()
            .await
            .expect("register")
            .json()
            .await
            .expect("JSON");
        let token = body["data"]["register"]["accessToken"]
            .as_str()
            .unwrap_or_else(|| panic!("{body}"));
        for other in &servers {
            let me: serde_json::Value = client
                .post(other.url("/graphql"))
                .bearer_auth(token)
                .json(&serde_json::json!({"query": "{ me { id } }"}))
                .send()
                .await
                .expect("me")
                .json()
                .await
                .expect("JSON");
            assert!(me["data"]["me"]["id"].is_string(), "{me}");
        }
    }
}

/// Holds the migration lock of the database at `url` the way another instance would, until
/// dropped (the connection closes).
struct HeldLock(DatabaseConnection);

impl HeldLock {
    async fn take(backend: Backend, url: &str) -> Self {
        let mut options = sea_orm::ConnectOptions::new(url.to_owned());
        options.max_connections(1).min_connections(1);
        let db = Database::connect(options).await.expect("connect");
        if backend == Backend::Sqlite {
            // As a running instance has it.
            db.execute_unprepared("PRAGMA journal_mode = WAL")
                .await
                .expect("WAL");
        }
        let sql = match backend {
            Backend::Postgres => format!(
                "SELECT pg_advisory_lock({})",
                auth_server::migrate::POSTGRES_LOCK_KEY
            ),
            Backend::Mysql => format!(
                "SELECT GET_LOCK(LEFT(CONCAT('{}', DATABASE()), 64), 0)",
                auth_server::migrate::MYSQL_LOCK_PREFIX
            ),
            Backend::Sqlite => "BEGIN IMMEDIATE".to_owned(),
        };
        let row = db
            .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
            .await
            .expect("take the lock");
        if backend == Backend::Mysql {
            let got: Option<i64> = row.and_then(|r| r.try_get_by_index(0).ok());
            assert_eq!(got, Some(1), "GET_LOCK");
        }
        HeldLock(db)
    }

    async fn release(self) {
        if self.0.get_database_backend() == DatabaseBackend::Sqlite {
            self.0
                .execute_unprepared("ROLLBACK")
                .await
                .expect("rollback");
        }
        self.0.close().await.expect("close");
    }
}

async fn a_migration_waits_for_a_held_lock_at_most_the_configured_time_and_says_why(
    backend: Backend,
) {
    let (_guard, url) = create_database(backend).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let lock = HeldLock::take(backend, &url).await;

    let started = Instant::now();
    let mut migrate = spawn(
        dir.path(),
        &url,
        &["migrate", "up"],
        &[("DATABASE_MIGRATION_LOCK_TIMEOUT", "1s")],
        &[],
    );
    let status = migrate.wait_exit(Duration::from_secs(15)).await;
    let elapsed = started.elapsed();
    let output = migrate.output();
    assert!(!status.success(), "migrated under a held lock:\n{output}");
    assert!(
        output.contains("waiting for the migration lock")
            && output.contains("DATABASE_MIGRATION_LOCK_TIMEOUT"),
        "output:\n{output}"
    );
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(10),
        "gave up after {elapsed:?}"
    );

    // Once the lock is free, the same command applies everything.
    lock.release().await;
    let mut migrate = spawn(dir.path(), &url, &["migrate", "up"], &[], &[]);
    let status = migrate.wait_exit(Duration::from_secs(20)).await;
    assert!(status.success(), "{}", migrate.output());
    let db = Database::connect(&url).await.expect("connect");
    assert_eq!(recorded_migrations(&db).await, migrations());
    db.close().await.ok();
}

backend_tests!(
    instances_started_at_once_on_an_empty_database_all_start_and_migrate_once,
    a_migration_waits_for_a_held_lock_at_most_the_configured_time_and_says_why
);

// SQLite keeps its first key outside the lock (the lock is a transaction on its connection).
crate::server_backend_tests!(instances_started_at_once_make_one_first_signing_key_between_them);
