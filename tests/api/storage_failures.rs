//! The storage fails under a running server: the SQLite file fills up, is deleted or is
//! replaced, or a server backend's connection is killed mid-transaction. Every write the
//! server acknowledges is there after a restart, `/health` says 503 while writes cannot
//! commit, and writes recover by themselves when the storage does.
//!
//! A full disk is SQLite's `PRAGMA max_page_count` on every pooled connection: the file
//! cannot grow past a few pages more than it has at start, and a write that needs a page
//! beyond fails with `SQLITE_FULL`, as on a full disk. The test fills the file with a
//! `filler` table first and deletes it to "free the space": its pages go to the free list,
//! where writes find room again without growing the file.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use auth_server::Application;
use auth_server::config::Settings;
use futures::future::join_all;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::helpers::*;

/// A server started on a database the test connected itself, stoppable for a restart.
struct Server {
    address: String,
    client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(app: Application) -> Server {
        let address = format!("http://127.0.0.1:{}", app.port());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        Server {
            address,
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .expect("client"),
            stop: Some(stop),
            served,
        }
    }

    /// Stops serving and waits until the server (and its pool) is gone.
    async fn shut_down(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let served = tokio::time::timeout(Duration::from_secs(10), &mut self.served).await;
        assert!(served.is_ok(), "the server did not stop");
    }

    async fn health(&self) -> (u16, Value) {
        let resp = self
            .client
            .get(format!("{}/health", self.address))
            .send()
            .await
            .expect("health answers");
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("health is JSON"))
    }

    async fn gql(&self, query: &str, variables: Value, bearer: Option<&str>) -> Value {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.address))
            .json(&json!({"query": query, "variables": variables}));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let resp = request.send().await.expect("the server answers");
        resp.json().await.expect("GraphQL answers JSON")
    }

    /// The access token of an acknowledged registration, or the error code of a refused one.
    async fn register(&self, email: &str) -> Result<String, String> {
        let body = self
            .gql(
                "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }",
                json!({"i": {"email": email, "password": PASSWORD}}),
                None,
            )
            .await;
        field_or_code(&body, "register", "accessToken")
    }

    /// Registers `emails` concurrently; returns (email, access token) of each acknowledged
    /// one and the codes of the refused ones.
    async fn register_all(&self, emails: Vec<String>) -> (Vec<(String, String)>, Vec<String>) {
        let answers = join_all(emails.iter().map(|e| self.register(e))).await;
        let mut acknowledged = Vec::new();
        let mut refused = Vec::new();
        for (email, answer) in emails.into_iter().zip(answers) {
            match answer {
                Ok(token) => acknowledged.push((email, token)),
                Err(code) => refused.push(code),
            }
        }
        (acknowledged, refused)
    }

    /// Polls `/health` until it answers `status`, for at most `within`.
    async fn wait_for_health(&self, status: u16, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let (now, body) = self.health().await;
            if now == status {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "/health did not turn {status} within {within:?}: {now} {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// `data.{operation}.{field}` of a GraphQL answer, or the code of its first error.
fn field_or_code(body: &Value, operation: &str, field: &str) -> Result<String, String> {
    match body["data"][operation][field].as_str() {
        Some(value) => Ok(value.to_owned()),
        None => Err(body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or("no code")
            .to_owned()),
    }
}

/// Pages the file may grow by once the server runs: room for the health probe, not for many
/// registrations.
const HEADROOM_PAGES: u64 = 8;

/// A migrated SQLite file in a fresh directory with a `filler` table of `filler_pages`
/// pages, its settings, and its size in pages.
async fn sqlite_database(filler_pages: usize) -> (tempfile::TempDir, PathBuf, Settings, u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("auth.db");
    let mut settings = test_settings();
    settings.database.url = SecretString::from(format!("sqlite://{}?mode=rwc", path.display()));
    settings.database.statement_timeout = Duration::from_secs(2);
    // Mail waits in the outbox (nothing listens at this SMTP address): a registration's
    // verification mail is then one more row that stays, as on a server whose mail is
    // down, and a full file stays full. Delivered mails would leave the outbox and free
    // pages between two requests, and "full" would come and go with the worker.
    settings.mail.smtp_url = Some(SecretString::from(format!(
        "smtp://127.0.0.1:{}",
        free_addr().port()
    )));
    let db = auth_server::db::connect(&settings.database)
        .await
        .expect("connect");
    auth_server::db::migrate(&db).await.expect("migrate");
    db.close().await.expect("close");
    let conn = rusqlite::Connection::open(&path).expect("open");
    conn.execute_batch(&format!(
        "CREATE TABLE filler (b BLOB); \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {filler_pages}) \
         INSERT INTO filler SELECT zeroblob(4000) FROM n;"
    ))
    .expect("fill");
    let pages: i64 = conn
        .query_row("PRAGMA page_count", [], |row| row.get(0))
        .expect("page count");
    (dir, path, settings, pages.unsigned_abs())
}

/// A server on `settings` whose pooled connections cannot grow the file past `max_pages`.
async fn start_on_a_small_disk(settings: &Settings, max_pages: u64) -> Server {
    let db = auth_server::db::connect_with(&settings.database, move |o| {
        o.pragma("max_page_count", max_pages.to_string())
    })
    .await
    .expect("connect");
    let app = Application::build_with_db(settings.clone(), db)
        .await
        .expect("the application builds");
    Server::start(app).await
}

/// Deletes the filler table's rows from a connection of the test's own: their pages become
/// free for the server's writes.
fn free_the_space(path: &Path) {
    let conn = rusqlite::Connection::open(path).expect("open");
    conn.busy_timeout(Duration::from_secs(3)).expect("timeout");
    conn.execute("DELETE FROM filler", []).unwrap_or_else(|e| {
        panic!("could not free space ({e}): a pooled connection holds the write lock")
    });
}

/// Registers in rounds of 40 concurrent requests until some are refused (the file is full).
async fn fill_up(server: &Server, acknowledged: &mut Vec<(String, String)>) -> usize {
    for round in 0..10 {
        let emails = (0..40)
            .map(|i| format!("full-{round}-{i}@example.com"))
            .collect();
        let (ok, refused) = server.register_all(emails).await;
        acknowledged.extend(ok);
        if !refused.is_empty() {
            assert!(
                refused.iter().all(|c| c == "INTERNAL_SERVER_ERROR"),
                "{refused:?}"
            );
            return refused.len();
        }
    }
    panic!("the file never filled up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_acknowledged_around_a_full_disk_survive_a_restart() {
    // The freed filler is room for the 100 registrations after it, with their mails.
    let (_dir, path, mut settings, pages) = sqlite_database(300).await;
    // Few connections, so that each of them meets the full disk.
    settings.database.max_connections = 2;
    let server = start_on_a_small_disk(&settings, pages + HEADROOM_PAGES).await;

    let mut acknowledged = Vec::new();
    let refused = fill_up(&server, &mut acknowledged).await;
    // More attempts while full: each may leave a connection behind in a failed transaction.
    let (ok, _) = server
        .register_all(
            (0..40)
                .map(|i| format!("still-full-{i}@example.com"))
                .collect(),
        )
        .await;
    acknowledged.extend(ok);

    free_the_space(&path);
    // Answers other than an acknowledgement or EMAIL_TAKEN once the space is back.
    let mut failed_after = Vec::new();
    // A client that submits twice: one of each pair is acknowledged, the other is told the
    // email is taken (the loser's transaction is rolled back after its insert failed).
    let pairs: Vec<String> = (0..20)
        .flat_map(|i| {
            [
                format!("twice-{i}@example.com"),
                format!("twice-{i}@example.com"),
            ]
        })
        .collect();
    let (ok, refused_twice) = server.register_all(pairs).await;
    failed_after.extend(refused_twice.into_iter().filter(|c| c != "EMAIL_TAKEN"));
    acknowledged.extend(ok);
    // Writes recover by themselves: every registration from now on is acknowledged.
    for round in 0..2 {
        let emails = (0..40)
            .map(|i| format!("freed-{round}-{i}@example.com"))
            .collect();
        let (ok, refused_after) = server.register_all(emails).await;
        failed_after.extend(refused_after);
        acknowledged.extend(ok);
    }
    server.shut_down().await;

    // A restart: a new application on the same file, without the page limit.
    let restarted = Server::start(
        Application::build(settings.clone())
            .await
            .expect("the application builds"),
    )
    .await;
    let mut lost = Vec::new();
    for (email, access) in &acknowledged {
        let me = restarted
            .gql("{ me { email } }", json!({}), Some(access))
            .await;
        if me["data"]["me"]["email"].as_str() != Some(email) {
            lost.push(email.clone());
        }
    }
    restarted.shut_down().await;
    assert!(
        lost.is_empty() && failed_after.is_empty(),
        "{refused} refused while full; after the space was freed {} refused; {} of {} \
         acknowledged registrations lost after a restart: {:?}",
        failed_after.len(),
        lost.len(),
        acknowledged.len(),
        &lost[..lost.len().min(5)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_503_while_writes_cannot_commit_and_recovers_by_itself() {
    let (_dir, path, settings, pages) = sqlite_database(40).await;
    let server = start_on_a_small_disk(&settings, pages + HEADROOM_PAGES).await;
    assert_eq!(
        server.health().await,
        (200, json!({"status": "ok", "database": "up"}))
    );
    fill_up(&server, &mut Vec::new()).await;

    let down = server.wait_for_health(503, Duration::from_secs(3)).await;
    assert_eq!(down["database"], "down", "{down}");

    free_the_space(&path);
    let up = server.wait_for_health(200, Duration::from_secs(5)).await;
    assert_eq!(up, json!({"status": "ok", "database": "up"}));
    server
        .register("after@example.com")
        .await
        .expect("a registration after the space returned");
    server.shut_down().await;
}

impl Server {
    /// The successor of refresh token `token`, or the error code of a refused rotation.
    async fn rotate(&self, token: &str) -> Result<String, String> {
        let body = self
            .gql(
                "mutation($t: String!) { refreshToken(refreshToken: $t) { refreshToken } }",
                json!({"t": token}),
                None,
            )
            .await;
        field_or_code(&body, "refreshToken", "refreshToken")
    }

    /// Rotates every token of `chains` at once; an answered successor replaces its token,
    /// a refused rotation leaves it. Returns the codes of the refusals.
    async fn rotate_all(&self, chains: &mut [String]) -> Vec<String> {
        let answers = join_all(chains.iter().map(|t| self.rotate(t))).await;
        let mut refused = Vec::new();
        for (token, answer) in chains.iter_mut().zip(answers) {
            match answer {
                Ok(next) => *token = next,
                Err(code) => refused.push(code),
            }
        }
        refused
    }
}

/// Rotations (committed in groups on SQLite) meet a full disk. A chain moves on in place,
/// so its rotations need no new page and go on while the file is full. A token issued
/// before chains starts its session's chain, a new row: a refused one leaves its token as
/// it was (neither spent nor half-rotated), an answered one is on disk, and rotations
/// recover by themselves once space returns. After a restart every chain's last answered
/// token refreshes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotations_around_a_full_disk_are_answered_only_when_committed() {
    let (_dir, path, settings, _) = sqlite_database(300).await;
    // The sessions are opened first, while the disk has room.
    let roomy = Server::start(
        Application::build(settings.clone())
            .await
            .expect("the application builds"),
    )
    .await;
    let mut chains = Vec::new();
    for i in 0..40 {
        let body = roomy
            .gql(
                "mutation($i: RegisterInput!) { register(input: $i) { refreshToken } }",
                json!({"i": {"email": format!("chain-{i}@example.com"), "password": PASSWORD}}),
                None,
            )
            .await;
        let token = body["data"]["register"]["refreshToken"].as_str();
        chains.push(token.unwrap_or_else(|| panic!("{body}")).to_owned());
    }
    roomy.shut_down().await;
    let mut upgrading = {
        let db = auth_server::db::connect(&settings.database)
            .await
            .expect("connect");
        let url = secrecy::ExposeSecret::expose_secret(&settings.database.url).to_owned();
        let tokens = store_pre_chain_refresh_tokens(&settings, &db, &url).await;
        db.close().await.expect("close");
        tokens
    };
    assert_eq!(upgrading.len(), 40);
    let pages: i64 = rusqlite::Connection::open(&path)
        .expect("open")
        .query_row("PRAGMA page_count", [], |row| row.get(0))
        .expect("page count");
    let server = start_on_a_small_disk(&settings, pages.unsigned_abs() + HEADROOM_PAGES).await;
    fill_up(&server, &mut Vec::new()).await;

    // The file is full, and chains still move on: ten rounds of 40 concurrent rotations.
    for round in 0..10 {
        let refused = server.rotate_all(&mut chains).await;
        assert!(
            refused.is_empty(),
            "round {round}: a chain's rotation needed room: {refused:?}"
        );
    }

    // Rounds of 40 concurrent rotations of the tokens from before chains until the disk
    // refuses some.
    let mut refused = Vec::new();
    for _ in 0..20 {
        refused = server.rotate_all(&mut upgrading).await;
        if !refused.is_empty() {
            break;
        }
    }
    assert!(!refused.is_empty(), "no rotation met the full disk");
    assert!(
        refused.iter().all(|c| c == "INTERNAL_SERVER_ERROR"),
        "{refused:?}"
    );

    // Space returns: every token rotates again, the refused ones from the token they kept.
    free_the_space(&path);
    let after = server.rotate_all(&mut upgrading).await;
    assert!(
        after.is_empty(),
        "{} rotations refused while full; after the space was freed: {after:?}",
        refused.len()
    );
    server.shut_down().await;

    let restarted = Server::start(
        Application::build(settings.clone())
            .await
            .expect("the application builds"),
    )
    .await;
    let lost = restarted.rotate_all(&mut upgrading).await;
    let lost_chains = restarted.rotate_all(&mut chains).await;
    restarted.shut_down().await;
    assert!(
        lost.is_empty() && lost_chains.is_empty(),
        "answered rotations missing after a restart: {lost:?} {lost_chains:?}"
    );
}

/// The SQLite file of a test app's database URL.
fn sqlite_path(app: &TestApp) -> PathBuf {
    let url = app.database_url.trim_start_matches("sqlite://");
    PathBuf::from(url.split('?').next().expect("path"))
}

async fn health_of(app: &TestApp) -> (u16, Value) {
    let resp = app
        .client
        .get(app.url("/health"))
        .send()
        .await
        .expect("health answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("health is JSON"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_sqlite_file_under_the_server_is_reported_and_refuses_writes() {
    let app = spawn_app(Backend::Sqlite).await;
    let before = app.register_ok("before@example.com").await;
    assert_eq!(health_of(&app).await.0, 200);

    let path = sqlite_path(&app);
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        if file.exists() {
            std::fs::remove_file(&file).expect("rm");
        }
    }

    let (status, body) = health_of(&app).await;
    assert_eq!(
        (status, body),
        (503, json!({"status": "degraded", "database": "down"}))
    );
    let refused = app.register("after@example.com", PASSWORD, None).await;
    let error = refused.expect_error("INTERNAL_SERVER_ERROR");
    assert_eq!(
        error["message"], "internal server error",
        "{}",
        refused.body
    );
    // Every other write too: login opens a session, refresh rotates, logout revokes.
    app.login_email("before@example.com", PASSWORD)
        .await
        .expect_error("INTERNAL_SERVER_ERROR");
    app.refresh(&before.refresh)
        .await
        .expect_error("INTERNAL_SERVER_ERROR");
    app.logout(Some(&before.access), None, false)
        .await
        .expect_error("INTERNAL_SERVER_ERROR");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_the_sqlite_file_is_reported_until_the_original_is_back() {
    let app = spawn_app(Backend::Sqlite).await;
    app.register_ok("before@example.com").await;
    let path = sqlite_path(&app);
    let original = path.with_file_name("original.db");
    std::fs::hard_link(&path, &original).expect("keep the original");

    // Another file (a copy, same content) moved over the path.
    let copy = path.with_file_name("copy.db");
    std::fs::copy(&path, &copy).expect("copy");
    std::fs::rename(&copy, &path).expect("replace");
    assert_eq!(health_of(&app).await.0, 503);
    app.register("after@example.com", PASSWORD, None)
        .await
        .expect_error("INTERNAL_SERVER_ERROR");

    // The file the server opened is back at its path: it recovers by itself.
    std::fs::rename(&original, &path).expect("restore");
    assert_eq!(
        health_of(&app).await,
        (200, json!({"status": "ok", "database": "up"}))
    );
    app.register_ok("after@example.com").await;
}

/// A server backend connection killed while its transaction waits on a lock: the write is
/// refused, never acknowledged, the pool replaces the connection, and the next writes
/// commit (an admin connection sees them).
async fn a_connection_killed_mid_transaction_is_not_reused(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.database.max_connections = 2).await;
    let admin = sea_orm::Database::connect(&app.database_url)
        .await
        .expect("admin connects");
    use sea_orm::{ConnectionTrait, TransactionTrait};
    // Hold the unique key of the email in an open transaction: the server's insert waits.
    let blocker = admin.begin().await.expect("begin");
    let (hold, find_waiter) = match backend {
        Backend::Postgres => (
            "INSERT INTO users (id, email, password_hash, created_at, updated_at) \
             VALUES (gen_random_uuid(), 'killed@example.com', 'x', now(), now())",
            "SELECT pid::bigint FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        ),
        _ => (
            "INSERT INTO users (id, email, password_hash, created_at, updated_at) \
             VALUES (UNHEX(REPLACE(UUID(), '-', '')), 'killed@example.com', 'x', NOW(6), NOW(6))",
            "SELECT CAST(id AS SIGNED) FROM information_schema.processlist \
             WHERE db = DATABASE() AND command = 'Execute' AND info LIKE 'INSERT INTO%users%'",
        ),
    };
    blocker
        .execute_unprepared(hold)
        .await
        .expect("hold the key");
    let registering = {
        let client = app.client.clone();
        let url = app.url("/graphql");
        tokio::spawn(async move {
            client
                .post(url)
                .json(&json!({
                    "query": "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }",
                    "variables": {"i": {"email": "killed@example.com", "password": PASSWORD}},
                }))
                .send()
                .await
                .expect("answer")
                .json::<Value>()
                .await
                .expect("json")
        })
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let waiter: i64 = loop {
        let row = admin
            .query_one_raw(sea_orm::Statement::from_string(
                admin.get_database_backend(),
                find_waiter,
            ))
            .await
            .expect("find the waiting connection");
        if let Some(row) = row {
            break row.try_get_by_index(0).expect("id");
        }
        assert!(
            Instant::now() < deadline,
            "the server's insert never waited"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let kill = match backend {
        Backend::Postgres => format!("SELECT pg_terminate_backend({waiter})"),
        _ => format!("KILL {waiter}"),
    };
    admin.execute_unprepared(&kill).await.expect("kill");
    let answer = registering.await.expect("register task");
    assert_eq!(
        answer["errors"][0]["extensions"]["code"], "INTERNAL_SERVER_ERROR",
        "{answer}"
    );
    blocker.rollback().await.expect("rollback");

    assert_eq!(health_of(&app).await.0, 200);
    for i in 0..4 {
        app.register_ok(&format!("next-{i}@example.com")).await;
    }
    app.register_ok("killed@example.com").await;
    let committed = admin
        .query_one_raw(sea_orm::Statement::from_string(
            admin.get_database_backend(),
            "SELECT COUNT(*) FROM users",
        ))
        .await
        .expect("count")
        .expect("row");
    let count: i64 = committed.try_get_by_index(0).expect("count");
    assert_eq!(count, 5, "every acknowledged registration is committed");
    admin.close().await.ok();
}

crate::server_backend_tests!(a_connection_killed_mid_transaction_is_not_reused);

/// Whether the pool's connection is inside a database transaction now (asked on it).
async fn pool_in_transaction(db: &sea_orm::DatabaseConnection, backend: Backend) -> bool {
    use sea_orm::ConnectionTrait;
    let ask = |sql: &'static str| async move {
        db.query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            sql,
        ))
        .await
        .expect("the pool answers")
        .expect("a row")
    };
    match backend {
        // Outside a transaction each statement is one, and `now()` is its start: two
        // statements a few milliseconds apart see two instants; inside one, the same.
        Backend::Postgres => {
            let first: String = ask("SELECT CAST(now() AS TEXT)")
                .await
                .try_get_by_index(0)
                .expect("text");
            tokio::time::sleep(Duration::from_millis(3)).await;
            let second: String = ask("SELECT CAST(now() AS TEXT)")
                .await
                .try_get_by_index(0)
                .expect("text");
            first == second
        }
        _ => {
            let open: i64 = ask("SELECT CAST(@@in_transaction AS SIGNED)")
                .await
                .try_get_by_index(0)
                .expect("an integer");
            open != 0
        }
    }
}

/// A write dropped at any point of its `BEGIN` (a client that disconnects, a health check
/// that times out) leaves no transaction open on the pooled connection. sqlx only counts a
/// transaction once its `BEGIN` has answered, so a `BEGIN` cancelled in flight used to
/// leave the database inside a transaction that sqlx did not know of: the next user of the
/// connection ran inside it (on PostgreSQL, its writes were never committed; on MariaDB,
/// its `SET TRANSACTION` failed).
async fn a_write_cancelled_while_it_begins_leaves_no_transaction_open(backend: Backend) {
    let (_guard, url) = create_database(backend).await;
    let mut settings = test_settings();
    settings.database.url = SecretString::from(url.clone());
    // One connection: whatever a cancelled write leaves on it, the next user meets.
    settings.database.max_connections = 1;
    let db = auth_server::db::connect(&settings.database)
        .await
        .expect("connect");
    auth_server::db::migrate(&db).await.expect("migrate");
    let store = auth_server::store::Store::new(db.clone(), &url);
    let mut leaked = Vec::new();
    // Cancel after 0, 1, 2, ... polls, twice over: the cancellation walks through the
    // checkout, the ping and the `BEGIN` round trip.
    for polls in (0..300).chain(0..300) {
        let mut write = Box::pin(store.begin_write());
        for _ in 0..polls {
            if futures::poll!(write.as_mut()).is_ready() {
                break;
            }
            tokio::task::yield_now().await;
        }
        drop(write);
        if pool_in_transaction(&db, backend).await {
            leaked.push(polls);
        }
    }
    assert!(
        leaked.is_empty(),
        "a cancelled BEGIN left the connection inside a transaction after {} of 600 \
         cancellations (after these many polls: {leaked:?})",
        leaked.len()
    );
}

crate::server_backend_tests!(a_write_cancelled_while_it_begins_leaves_no_transaction_open);

/// A refresh dropped at any point (a client that hangs up mid-request) leaves no
/// transaction open on the pooled connection: on PostgreSQL and MySQL its read and
/// rotation run on one connection, through sqlx directly, in a task of their own, which
/// finishes its `BEGIN` and its transaction whatever becomes of the request.
async fn a_refresh_cancelled_at_any_point_leaves_no_transaction_open(backend: Backend) {
    use auth_server::store::{Decide, FoundRefresh, Rotation, Step, Store};
    use sea_orm::ConnectionTrait;
    let app = spawn_app(backend).await;
    app.register_ok("cancelled@example.com").await;
    let mut settings = test_settings();
    settings.database.url = SecretString::from(app.database_url.clone());
    // One connection: whatever a cancelled refresh leaves on it, the next user meets.
    settings.database.max_connections = 1;
    let db = auth_server::db::connect(&settings.database)
        .await
        .expect("connect");
    let store = Store::new(db.clone(), &app.database_url);
    let hash: String = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT token_hash FROM refresh_tokens",
        ))
        .await
        .expect("select")
        .expect("the registration's token")
        .try_get_by_index(0)
        .expect("text");
    let mut leaked = Vec::new();
    let mut rotated = 0;
    // Cancel after 0, 1, 2, ... polls: through the checkout, the read, the `BEGIN` and
    // the rotation's statements. Every judgement asks for the rotation, so after the
    // first that commits, each still begins, finds the token spent and rolls back.
    for polls in 0..300 {
        let decide: Decide = Box::new(move |found: &FoundRefresh| {
            let at = chrono::Utc::now();
            Some(Rotation {
                token: found.token.id,
                session: found.token.session_id,
                // The registration's generation, every time: after the first rotation
                // commits, the chain has moved on from it.
                step: Step::Advance { from: 0 },
                at,
                expires_at: at + chrono::Duration::days(1),
                client: auth_server::auth::Client::default(),
            })
        });
        let mut refresh = Box::pin(store.find_and_rotate(hash.clone(), decide));
        let mut finished = false;
        for _ in 0..polls {
            if let std::task::Poll::Ready(answer) = futures::poll!(refresh.as_mut()) {
                let refreshed = answer
                    .expect("the refresh runs")
                    .expect("the token is found");
                rotated +=
                    usize::from(refreshed.rotated == Some(auth_server::store::Rotated::Done));
                finished = true;
                break;
            }
            tokio::task::yield_now().await;
        }
        drop(refresh);
        if pool_in_transaction(&db, backend).await {
            leaked.push((polls, finished));
        }
    }
    assert!(
        leaked.is_empty(),
        "a cancelled refresh left the connection inside a transaction (after these many \
         polls, and whether it had finished: {leaked:?})"
    );
    assert!(rotated <= 1, "the token was rotated {rotated} times");
    let stored: i64 = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) FROM refresh_tokens WHERE spent_at IS NULL",
        ))
        .await
        .expect("count")
        .expect("a row")
        .try_get_by_index(0)
        .expect("an integer");
    assert_eq!(
        stored, 1,
        "one live token: the original, or the one successor"
    );
}

crate::server_backend_tests!(a_refresh_cancelled_at_any_point_leaves_no_transaction_open);

/// Every pooled connection of a server backend carries the session settings: the
/// statement timeout, and READ COMMITTED for every transaction (at MySQL's default,
/// REPEATABLE READ, a DELETE that finds no row takes gap locks, and two writes of one
/// account deadlocked). On MySQL both are set when a connection is made; they used to be
/// set through sea-orm's `after_connect`, which runs once, so only one connection of the
/// pool had the timeout. READ COMMITTED was sent before each `BEGIN` instead (one more
/// round trip per write); `Store::begin_write` now begins with the default options, so a
/// plain transaction must see it on every connection.
async fn server_connections_all_carry_the_session_settings(backend: Backend) {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let (_guard, url) = create_database(backend).await;
    let mut settings = test_settings();
    settings.database.url = SecretString::from(url.clone());
    settings.database.max_connections = 3;
    settings.database.statement_timeout = Duration::from_secs(7);
    let db = auth_server::db::connect(&settings.database)
        .await
        .expect("connect");
    auth_server::db::migrate(&db).await.expect("migrate");
    let (level_sql, timeout_sql, timeout) = match backend {
        Backend::Postgres => (
            "SELECT CAST(current_setting('transaction_isolation') AS TEXT)",
            "SELECT CAST(current_setting('statement_timeout') AS TEXT)",
            "7s",
        ),
        // MariaDB 10.11 names it tx_isolation (MySQL 8 and MariaDB 11 also
        // transaction_isolation); MySQL's timeout is max_execution_time, in ms.
        _ => (
            "SELECT CAST(@@tx_isolation AS CHAR)",
            "SELECT CAST(CAST(@@max_statement_time AS DECIMAL(10, 3)) AS CHAR)",
            "7.000",
        ),
    };
    // Three transactions open at once: one on each of the pool's connections.
    let mut transactions = Vec::new();
    for _ in 0..3 {
        transactions.push(db.begin().await.expect("begin"));
    }
    for (i, txn) in transactions.iter().enumerate() {
        let ask = |sql: &'static str| {
            txn.query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                sql,
            ))
        };
        let text = |row: Option<sea_orm::QueryResult>| {
            row.expect("a row")
                .try_get_by_index::<String>(0)
                .expect("text")
        };
        let level = text(ask(level_sql).await.expect("the transaction answers"));
        assert_eq!(
            level.to_ascii_lowercase().replace('-', " "),
            "read committed",
            "connection {i}: a transaction's isolation level"
        );
        assert_eq!(
            text(ask(timeout_sql).await.expect("the transaction answers")),
            timeout,
            "connection {i}: the statement timeout"
        );
    }
    for txn in transactions {
        txn.rollback().await.expect("rollback");
    }
}

crate::server_backend_tests!(server_connections_all_carry_the_session_settings);

/// Every connection of the server killed between requests, after enough load that it keeps
/// some checked out between uses (its kept connections, which skip sqlx's ping on release):
/// `me` and `refreshToken` fail at most once per connection the pool could hold, then
/// answer again, each on a fresh connection. A refresh that failed rotated nothing: its
/// token still works.
async fn connections_killed_between_requests_are_replaced(backend: Backend) {
    const POOL: u32 = 8;
    let app = spawn_app_with(backend, |s| s.database.max_connections = POOL).await;
    let admin = sea_orm::Database::connect(&app.database_url)
        .await
        .expect("admin connects");
    use sea_orm::ConnectionTrait;
    let tokens = app.register_ok("kept@example.com").await;
    let mut refresh = tokens.refresh.clone();
    // Concurrent reads and a few rotations, so that several connections are kept.
    for _ in 0..3 {
        join_all((0..16).map(|_| app.me(Some(&tokens.access)))).await;
    }
    for _ in 0..3 {
        let r = app.refresh(&refresh).await;
        refresh = Tokens::from_payload(r.data("refreshToken")).refresh;
    }

    let others = match backend {
        Backend::Postgres => {
            "SELECT pid::bigint FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()"
        }
        _ => {
            "SELECT CAST(id AS SIGNED) FROM information_schema.processlist \
             WHERE db = DATABASE() AND id <> CONNECTION_ID()"
        }
    };
    let rows = admin
        .query_all_raw(sea_orm::Statement::from_string(
            admin.get_database_backend(),
            others,
        ))
        .await
        .expect("the server's connections");
    assert!(!rows.is_empty(), "the server holds connections");
    for row in rows {
        let id: i64 = row.try_get_by_index(0).expect("id");
        let kill = match backend {
            Backend::Postgres => format!("SELECT pg_terminate_backend({id})"),
            _ => format!("KILL {id}"),
        };
        // A connection may have gone meanwhile; the others are still killed.
        let _ = admin.execute_unprepared(&kill).await;
    }

    let mut failed = 0;
    loop {
        let r = app.me(Some(&tokens.access)).await;
        match r.code() {
            None => break,
            Some(code) => {
                assert_eq!(code, "INTERNAL_SERVER_ERROR", "{}", r.body);
                failed += 1;
                assert!(failed <= POOL, "me still fails after {failed} tries");
            }
        }
    }
    for _ in 0..20 {
        assert_eq!(app.me(Some(&tokens.access)).await.code(), None);
    }
    let mut failed = 0;
    loop {
        let r = app.refresh(&refresh).await;
        match r.code() {
            None => {
                refresh = Tokens::from_payload(r.data("refreshToken")).refresh;
                break;
            }
            Some(code) => {
                assert_eq!(code, "INTERNAL_SERVER_ERROR", "{}", r.body);
                failed += 1;
                assert!(failed <= POOL, "refresh still fails after {failed} tries");
            }
        }
    }
    for _ in 0..10 {
        let r = app.refresh(&refresh).await;
        refresh = Tokens::from_payload(r.data("refreshToken")).refresh;
    }
    admin.close().await.ok();
}

crate::server_backend_tests!(connections_killed_between_requests_are_replaced);
