//! Committed writes survive `kill -9`: registrations and sessions acknowledged under write
//! load are all there after the server binary is killed and started again.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::backend_tests;
use crate::helpers::*;

struct Server {
    child: Child,
    address: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_server(database_url: &str, workdir: &std::path::Path) -> Server {
    start_server_with(database_url, workdir, &[]).await
}

async fn start_server_with(
    database_url: &str,
    workdir: &std::path::Path,
    extra_env: &[(&str, &str)],
) -> Server {
    let port = free_addr().port();
    let child = Command::new(env!("CARGO_BIN_EXE_auth-server"))
        .arg("serve")
        .current_dir(workdir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .env("PORT", port.to_string())
        .env("BCRYPT_COST", "4")
        .env("JWT_ACCESS_SECRET", ACCESS_SECRET)
        .env("JWT_REFRESH_SECRET", REFRESH_SECRET)
        .env("RATE_LIMIT_LOGIN_PER_IP", "0")
        .env("RATE_LIMIT_LOGIN_PER_ACCOUNT", "0")
        .env("RATE_LIMIT_REGISTER_PER_IP", "0")
        .env("RATE_LIMIT_MAIL_PER_IP", "0")
        .env("RATE_LIMIT_MAIL_PER_ADDRESS", "0")
        .env("RUST_LOG", "error")
        .envs(extra_env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("server binary starts");
    let server = Server {
        child,
        address: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client
            .get(format!("{}/health", server.address))
            .send()
            .await
            && r.status() == 200
        {
            return server;
        }
        assert!(Instant::now() < deadline, "server did not become healthy");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn gql(
    client: &reqwest::Client,
    address: &str,
    query: &str,
    variables: serde_json::Value,
) -> Option<serde_json::Value> {
    let resp = client
        .post(format!("{address}/graphql"))
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .ok()?;
    resp.json().await.ok()
}

async fn acknowledged_writes_survive_kill_dash_nine(backend: Backend) {
    let (_db, url) = create_database(backend).await;
    let workdir = tempfile::tempdir().expect("temp dir");
    let server = start_server(&url, workdir.path()).await;

    // (email, refresh token) of every registration the server acknowledged.
    let acknowledged: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let client = reqwest::Client::new();
    // The kill comes once this many registrations were acknowledged (not after a fixed
    // time: on a busy machine that could be none).
    const ACKNOWLEDGED_BEFORE_KILL: usize = 20;
    let give_up_at = Instant::now() + Duration::from_secs(120);
    let mut workers = Vec::new();
    for w in 0..6 {
        let (client, address, acknowledged) =
            (client.clone(), server.address.clone(), acknowledged.clone());
        workers.push(tokio::spawn(async move {
            for i in 0.. {
                if Instant::now() > give_up_at {
                    break;
                }
                let email = format!("w{w}-{i}@example.com");
                let Some(body) = gql(
                    &client,
                    &address,
                    "mutation($i: RegisterInput!) { register(input: $i) { refreshToken } }",
                    json!({"i": {"email": email, "password": PASSWORD}}),
                )
                .await
                else {
                    break; // the server is gone
                };
                if let Some(token) = body["data"]["register"]["refreshToken"].as_str() {
                    acknowledged
                        .lock()
                        .expect("lock")
                        .push((email, token.to_owned()));
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged.lock().expect("lock").len() < ACKNOWLEDGED_BEFORE_KILL {
        assert!(
            Instant::now() < deadline,
            "too little progress to mean anything: {} registrations in 60 s",
            acknowledged.lock().expect("lock").len()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(server); // SIGKILL mid-load, then reap
    for w in workers {
        w.await.expect("worker");
    }
    let acknowledged = acknowledged.lock().expect("lock").clone();

    let server = start_server(&url, workdir.path()).await;
    for (email, refresh) in &acknowledged {
        let login = gql(
            &client,
            &server.address,
            "mutation($i: LoginInput!) { login(input: $i) { accessToken } }",
            json!({"i": {"email": email, "password": PASSWORD}}),
        )
        .await
        .expect("answer");
        assert!(
            login["data"]["login"]["accessToken"].is_string(),
            "{email} lost: {login}"
        );
        let refreshed = gql(
            &client,
            &server.address,
            "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken } }",
            json!({"t": refresh}),
        )
        .await
        .expect("answer");
        assert!(
            refreshed["data"]["refreshToken"]["accessToken"].is_string(),
            "session of {email} lost: {refreshed}"
        );
    }
}

backend_tests!(acknowledged_writes_survive_kill_dash_nine);

const REFRESH: &str =
    "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken refreshToken } }";

/// A burst of rotations (32 sessions, each refreshed in a loop by its own client) is cut by
/// `kill -9`. Every successor the server answered must work after the restart: none may
/// have been answered before its commit (on SQLite, rotations commit in groups). The
/// token a client holds last is either still live or, when the server committed its
/// rotation but died before answering, spent inside the grace window, which the restart
/// stays within (`REFRESH_REUSE_GRACE` is 10 minutes here).
async fn acknowledged_rotations_survive_kill_dash_nine(backend: Backend) {
    const SESSIONS: usize = 32;
    const ANSWERED_BEFORE_KILL: usize = 400;
    let (_db, url) = create_database(backend).await;
    let workdir = tempfile::tempdir().expect("temp dir");
    let env = [("REFRESH_REUSE_GRACE", "10m")];
    let server = start_server_with(&url, workdir.path(), &env).await;
    let client = reqwest::Client::new();

    let mut latest = Vec::new();
    for i in 0..SESSIONS {
        let body = gql(
            &client,
            &server.address,
            "mutation($i: RegisterInput!) { register(input: $i) { refreshToken } }",
            json!({"i": {"email": format!("rot{i}@example.com"), "password": PASSWORD}}),
        )
        .await
        .expect("answer");
        let token = body["data"]["register"]["refreshToken"].as_str();
        latest.push(
            token
                .unwrap_or_else(|| panic!("register: {body}"))
                .to_owned(),
        );
    }
    // The last successor each client was answered, and how many were answered in all.
    let latest = Arc::new(Mutex::new(latest));
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for w in 0..SESSIONS {
        let (client, address) = (client.clone(), server.address.clone());
        let (latest, answered) = (latest.clone(), answered.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let token = latest.lock().expect("lock")[w].clone();
                let Some(body) = gql(&client, &address, REFRESH, json!({"t": token})).await else {
                    break; // the server is gone
                };
                let Some(next) = body["data"]["refreshToken"]["refreshToken"].as_str() else {
                    panic!("a refresh under load was refused: {body}");
                };
                latest.lock().expect("lock")[w] = next.to_owned();
                answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while answered.load(std::sync::atomic::Ordering::Relaxed) < ANSWERED_BEFORE_KILL {
        assert!(
            Instant::now() < deadline,
            "the refresh burst made too little progress"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(server); // SIGKILL mid-burst, then reap
    for w in workers {
        w.await.expect("worker");
    }
    let latest = latest.lock().expect("lock").clone();

    let server = start_server_with(&url, workdir.path(), &env).await;
    for (w, token) in latest.iter().enumerate() {
        let body = gql(&client, &server.address, REFRESH, json!({"t": token}))
            .await
            .expect("answer");
        assert!(
            body["data"]["refreshToken"]["accessToken"].is_string(),
            "session {w}: the last successor answered before the kill does not work: {body}"
        );
    }
}

backend_tests!(acknowledged_rotations_survive_kill_dash_nine);
