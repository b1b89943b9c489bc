//! Each security event is also one log line; with `LOG_FORMAT=json` a JSON object that a
//! collector selects by its target and reads field by field. The real binary's output.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::server_process::spawn;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_log_format_json_each_event_is_one_json_line_with_its_fields_and_no_secret() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/auth.db?mode=rwc", dir.path().display());
    let mut server = spawn(dir.path(), &url, &["serve"], &[("LOG_FORMAT", "json")], &[]);
    server.wait_healthy(Duration::from_secs(60)).await;
    let client = reqwest::Client::new();
    let password = "a wrong password 1234";
    let answer: Value = client
        .post(server.url("/graphql"))
        .header("user-agent", "log-line-test/1.0")
        .json(&json!({
            "query": "mutation($i: LoginInput!) { login(input: $i) { accessToken } }",
            "variables": {"i": {"email": "nobody@example.com", "password": password}},
        }))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    assert_eq!(
        answer["errors"][0]["extensions"]["code"], "INVALID_CREDENTIALS",
        "{answer}"
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        let output = server.output();
        let found = output
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["target"] == "security_event");
        if let Some(line) = found {
            break line;
        }
        assert!(Instant::now() < deadline, "no event line in:\n{output}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let fields = &line["fields"];
    assert_eq!(fields["message"], "security event", "{line}");
    assert_eq!(fields["kind"], "login", "{line}");
    assert_eq!(fields["outcome"], "failure", "{line}");
    assert_eq!(fields["detail"], "invalid_credentials", "{line}");
    assert_eq!(fields["ip"], "127.0.0.1", "{line}");
    assert_eq!(fields["user_agent"], "log-line-test/1.0", "{line}");
    assert!(fields["user_id"].is_null(), "an unknown account: {line}");
    assert!(
        fields["event_id"].as_str().is_some_and(|id| id.len() == 36),
        "{line}"
    );
    assert!(
        !server.output().contains(password),
        "the password is never logged"
    );
}
