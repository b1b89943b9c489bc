//! Errors as a client of the real binary sees them, and what its log says about them: an
//! internal error answers `INTERNAL_SERVER_ERROR` without its cause, and the cause is in
//! the log, inside the request's span. (The codes a client causes are asserted by every
//! flow's own tests; the mapping itself by `graphql::errors`' unit tests.)

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::PASSWORD;
use crate::server_process::{ServerProcess, spawn};

const REGISTER: &str =
    "mutation($input: RegisterInput!) { register(input: $input) { accessToken } }";

/// Registers `email`; returns the response's request id and body.
async fn register(server: &ServerProcess, email: &str) -> (String, Value) {
    let resp = reqwest::Client::new()
        .post(server.url("/graphql"))
        .json(&json!({
            "query": REGISTER,
            "variables": {"input": {"email": email, "password": PASSWORD}},
        }))
        .send()
        .await
        .expect("the server answers");
    let id = resp.headers()["x-request-id"]
        .to_str()
        .expect("an ASCII request id")
        .to_owned();
    (id, resp.json().await.expect("a JSON body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_internal_error_reaches_the_client_without_its_cause_and_is_logged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("auth.db");
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let mut server = spawn(dir.path(), &url, &["serve"], &[], &[]);
    server.wait_healthy(Duration::from_secs(20)).await;
    let (_, body) = register(&server, "before@example.com").await;
    assert!(
        body["data"]["register"]["accessToken"].is_string(),
        "{body}"
    );

    // Writes cannot be acknowledged once the file is gone from its path.
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", file.display());
        if std::path::Path::new(&path).exists() {
            std::fs::remove_file(&path).expect("rm");
        }
    }
    let (id, body) = register(&server, "after@example.com").await;
    assert_eq!(
        body["errors"],
        json!([{
            "message": "internal server error",
            "locations": [{"line": 1, "column": 36}],
            "path": ["register"],
            "extensions": {"code": "INTERNAL_SERVER_ERROR"},
        }]),
        "{body}"
    );

    let output = server.output();
    let logged = output
        .lines()
        .find(|line| line.contains("internal error"))
        .unwrap_or_else(|| panic!("the internal error was not logged:\n{output}"));
    assert!(logged.contains("ERROR"), "{logged}");
    assert!(logged.contains(&id), "not in the request's span: {logged}");
    assert!(!output.contains(PASSWORD), "{output}");
}
