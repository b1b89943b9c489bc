//! A clean shutdown loses no security event: the real binary, flooded with failed logins
//! (each one a buffered event), stopped with SIGTERM, leaves every failure it answered in
//! `security_events`: right after the flood, in its middle, and while the table is locked
//! so that the whole flood still waits in the writer's buffer when the signal comes.

use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use sea_orm::{ColumnTrait, ConnectionTrait, Database, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use auth_server::entity::security_event;

use crate::backend_tests;
use crate::helpers::{Backend, PASSWORD, create_database};
use crate::server_process::{ServerProcess, spawn};

const FLOOD: usize = 300;

/// The binary on `url` with every rate limit off.
async fn start(dir: &std::path::Path, url: &str) -> ServerProcess {
    start_with(dir, url, &[]).await
}

/// As [`start`], with `extra` settings.
async fn start_with(dir: &std::path::Path, url: &str, extra: &[(&str, &str)]) -> ServerProcess {
    let mut env = vec![
        ("RATE_LIMIT_LOGIN_PER_IP", "0"),
        ("RATE_LIMIT_LOGIN_PER_ACCOUNT", "0"),
        ("RATE_LIMIT_REGISTER_PER_IP", "0"),
        ("RATE_LIMIT_MAIL_PER_IP", "0"),
        ("RATE_LIMIT_MAIL_PER_ADDRESS", "0"),
        // The hashing queue sheds load beyond 64 waiting (RATE_LIMITED): room for all.
        ("PASSWORD_HASH_QUEUE", "1024"),
        ("RUST_LOG", "warn"),
    ];
    env.extend_from_slice(extra);
    let mut server = spawn(dir, url, &["serve"], &env, &[]);
    server.wait_healthy(Duration::from_secs(60)).await;
    server
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

async fn post(
    client: &reqwest::Client,
    server: &ServerProcess,
    body: Value,
) -> reqwest::Result<Value> {
    client
        .post(server.url("/graphql"))
        .json(&body)
        .send()
        .await?
        .json()
        .await
}

fn failed_login() -> Value {
    json!({
        "query": "mutation($i: LoginInput!) { login(input: $i) { accessToken } }",
        "variables": {"i": {"email": "ada@example.com", "password": "a wrong password"}},
    })
}

/// Whether a response is the refusal of a wrong password.
fn refused(body: &Value) -> bool {
    body["errors"][0]["extensions"]["code"] == json!("INVALID_CREDENTIALS")
}

/// SIGTERM, as a service manager stops the server.
fn terminate(server: &ServerProcess) {
    let pid = libc::pid_t::try_from(server.pid()).expect("a pid");
    // SAFETY: kill(2) on the pid of our own child, which is not reaped until it is waited
    // for, so the pid cannot name another process.
    let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(sent, 0, "SIGTERM was sent");
}

async fn registered(client: &reqwest::Client, server: &ServerProcess) {
    let r = post(
        client,
        server,
        json!({
            "query": "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }",
            "variables": {"i": {"email": "ada@example.com", "password": PASSWORD}},
        }),
    )
    .await
    .expect("register answers");
    assert!(r["errors"].is_null(), "{r}");
}

/// `n` concurrent failed logins, each answered `INVALID_CREDENTIALS`.
async fn flood_refused(client: &reqwest::Client, server: &ServerProcess, n: usize) {
    let answers: Vec<reqwest::Result<Value>> = (0..n)
        .map(|_| post(client, server, failed_login()))
        .collect::<FuturesUnordered<_>>()
        .collect()
        .await;
    for answer in &answers {
        let body = answer.as_ref().expect("every login is answered");
        assert!(refused(body), "{body}");
    }
}

/// The stored failed logins.
async fn stored_failures(url: &str) -> u64 {
    let db = Database::connect(url).await.expect("the database answers");
    let count = security_event::Entity::find()
        .filter(security_event::Column::Kind.eq("login"))
        .filter(security_event::Column::Outcome.eq("failure"))
        .count(&db)
        .await
        .expect("count");
    db.close().await.ok();
    count
}

async fn a_clean_shutdown_right_after_a_flood_of_failed_logins_stores_every_one(backend: Backend) {
    let (_db, url) = create_database(backend).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = start(dir.path(), &url).await;
    let client = client();
    registered(&client, &server).await;

    flood_refused(&client, &server, FLOOD).await;
    // At once: whatever the writer still buffers must be written before the exit.
    terminate(&server);
    let status = server.wait_exit(Duration::from_secs(60)).await;
    assert!(status.success(), "exit {status}:\n{}", server.output());

    assert_eq!(stored_failures(&url).await, FLOOD as u64);
}

async fn a_shutdown_in_the_middle_of_a_flood_stores_every_failure_it_answered(backend: Backend) {
    let (_db, url) = create_database(backend).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = start(dir.path(), &url).await;
    let client = client();
    registered(&client, &server).await;

    let mut flood: FuturesUnordered<_> = (0..FLOOD)
        .map(|_| post(&client, &server, failed_login()))
        .collect();
    let (mut answered, mut cut_off) = (0u64, 0u64);
    let mut terminated = false;
    while let Some(answer) = flood.next().await {
        match answer {
            Ok(body) => {
                assert!(refused(&body), "{body}");
                answered += 1;
            }
            // Refused or dropped once the server stops accepting: never processed.
            Err(_) => cut_off += 1,
        }
        if !terminated && answered == (FLOOD / 3) as u64 {
            terminate(&server);
            terminated = true;
        }
    }
    assert!(terminated);
    drop(flood);
    let status = server.wait_exit(Duration::from_secs(60)).await;
    assert!(status.success(), "exit {status}:\n{}", server.output());

    let stored = stored_failures(&url).await;
    assert!(
        stored >= answered,
        "{answered} failures were answered, {stored} stored ({cut_off} requests cut off)"
    );
    assert!(stored <= FLOOD as u64);
    assert_eq!(
        stored, answered,
        "a request cut off by the shutdown was never processed ({cut_off} cut off)"
    );
}

/// A connection holding a lock that makes every insert into `security_events` wait until
/// [`unlock`]: SQLite's write lock, a PostgreSQL `SHARE` lock, a MySQL `READ` table lock.
async fn lock_events(backend: Backend, url: &str) -> sea_orm::DatabaseConnection {
    let mut options = sea_orm::ConnectOptions::new(url.to_owned());
    // One connection: the lock and its release must run on it.
    options.max_connections(1).min_connections(1);
    let db = Database::connect(options)
        .await
        .expect("the database answers");
    let statements: &[&str] = match backend {
        Backend::Sqlite => &["BEGIN IMMEDIATE"],
        Backend::Postgres => &["BEGIN", "LOCK TABLE security_events IN SHARE MODE"],
        Backend::Mysql => &["LOCK TABLES security_events READ"],
    };
    for sql in statements {
        db.execute_unprepared(sql).await.expect("lock");
    }
    db
}

async fn unlock(backend: Backend, db: sea_orm::DatabaseConnection) {
    let sql = match backend {
        Backend::Sqlite | Backend::Postgres => "COMMIT",
        Backend::Mysql => "UNLOCK TABLES",
    };
    db.execute_unprepared(sql).await.expect("unlock");
    db.close().await.ok();
}

async fn a_shutdown_waits_for_events_the_writer_could_not_store_yet(backend: Backend) {
    let (_db, url) = create_database(backend).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = start(dir.path(), &url).await;
    let client = client();
    registered(&client, &server).await;

    // Every failure is answered, and waits in the writer's buffer: the table is locked.
    let lock = lock_events(backend, &url).await;
    flood_refused(&client, &server, FLOOD).await;
    terminate(&server);
    // The server has stopped taking requests; its writer still waits for the table.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        server.try_exit().is_none(),
        "the server exited with its events unstored:\n{}",
        server.output()
    );
    unlock(backend, lock).await;
    let status = server.wait_exit(Duration::from_secs(60)).await;
    assert!(status.success(), "exit {status}:\n{}", server.output());

    assert_eq!(stored_failures(&url).await, FLOOD as u64);
}

/// A running server keeps retrying events the database refuses, however long it refuses
/// them (it used to give a batch up after four tries, about 6 s at a 1 s statement
/// timeout): once the table takes writes again, every one is stored.
async fn events_the_database_refuses_for_a_while_are_stored_once_it_takes_them(backend: Backend) {
    const FAILURES: usize = 40;
    let (_db, url) = create_database(backend).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start_with(dir.path(), &url, &[("DATABASE_STATEMENT_TIMEOUT", "1s")]).await;
    let client = client();
    registered(&client, &server).await;

    let lock = lock_events(backend, &url).await;
    flood_refused(&client, &server, FAILURES).await;
    // Longer than the old four tries took to give up (the lock is another process's:
    // no clock of ours can be moved instead).
    tokio::time::sleep(Duration::from_secs(9)).await;
    unlock(backend, lock).await;

    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let stored = stored_failures(&url).await;
        if stored == FAILURES as u64 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{stored} of {FAILURES} stored:\n{}",
            server.output()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

backend_tests!(
    events_the_database_refuses_for_a_while_are_stored_once_it_takes_them,
    a_clean_shutdown_right_after_a_flood_of_failed_logins_stores_every_one,
    a_shutdown_in_the_middle_of_a_flood_stores_every_failure_it_answered,
    a_shutdown_waits_for_events_the_writer_could_not_store_yet,
);
