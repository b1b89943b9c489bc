//! `SHUTDOWN_DRAIN`: after SIGTERM the real binary keeps serving while `/health` answers
//! 503, so a load balancer takes it out before its listener closes; then it exits.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{Backend, create_database};
use crate::server_process::{ServerProcess, spawn};

/// SIGTERM, as a service manager stops the server.
fn terminate(server: &ServerProcess) {
    let pid = libc::pid_t::try_from(server.pid()).expect("a pid");
    // SAFETY: kill(2) on the pid of our own child, not yet reaped, so it names no other.
    let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(sent, 0, "SIGTERM was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_the_shutdown_drain_health_answers_503_and_requests_are_still_served() {
    let (_db, url) = create_database(Backend::Sqlite).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = spawn(
        dir.path(),
        &url,
        &["serve"],
        &[("SHUTDOWN_DRAIN", "3s")],
        &[],
    );
    server.wait_healthy(Duration::from_secs(60)).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");

    let signalled = Instant::now();
    terminate(&server);
    // The signal is handled at once: /health turns 503 (polled, on a listener still open).
    loop {
        let resp = client
            .get(server.url("/health"))
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "/health unreachable while draining: {e}\n{}",
                    server.output()
                )
            });
        if resp.status() == 503 {
            let body: Value = resp.json().await.expect("JSON health");
            assert_eq!(body, json!({"status": "draining"}));
            break;
        }
        assert_eq!(resp.status(), 200);
        assert!(
            signalled.elapsed() < Duration::from_secs(2),
            "/health still 200 2 s after SIGTERM:\n{}",
            server.output()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Requests are still served, on new connections, during the drain.
    let resp = client
        .post(server.url("/graphql"))
        .json(&json!({"query": "{ __typename }"}))
        .send()
        .await
        .expect("a request during the drain is served");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("JSON");
    assert_eq!(body["data"]["__typename"], "Query", "{body}");
    assert!(server.try_exit().is_none(), "exited during the drain");

    let status = server.wait_exit(Duration::from_secs(30)).await;
    assert!(status.success(), "exit {status}:\n{}", server.output());
    assert!(
        signalled.elapsed() >= Duration::from_secs(3),
        "exited {:?} after SIGTERM, before the 3 s drain ended",
        signalled.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_drain_sigterm_closes_the_listener_at_once() {
    let (_db, url) = create_database(Backend::Sqlite).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = spawn(dir.path(), &url, &["serve"], &[], &[]);
    server.wait_healthy(Duration::from_secs(60)).await;
    let signalled = Instant::now();
    terminate(&server);
    let status = server.wait_exit(Duration::from_secs(30)).await;
    assert!(status.success(), "exit {status}:\n{}", server.output());
    assert!(
        signalled.elapsed() < Duration::from_secs(2),
        "exited {:?} after SIGTERM with no drain configured",
        signalled.elapsed()
    );
}
