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
    let stop_at = Instant::now() + Duration::from_millis(1500);
    let mut workers = Vec::new();
    for w in 0..6 {
        let (client, address, acknowledged) =
            (client.clone(), server.address.clone(), acknowledged.clone());
        workers.push(tokio::spawn(async move {
            for i in 0.. {
                if Instant::now() > stop_at + Duration::from_secs(5) {
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
    tokio::time::sleep_until(stop_at.into()).await;
    drop(server); // SIGKILL mid-load, then reap
    for w in workers {
        w.await.expect("worker");
    }
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(
        acknowledged.len() >= 10,
        "too little load to mean anything: {}",
        acknowledged.len()
    );

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
