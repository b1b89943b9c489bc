//! `METRICS_ADDR`: Prometheus text on a listener of its own, with exact counts per
//! GraphQL operation; nothing at all without it.
//!
//! Every server of this process that has metrics on shares one recorder (it is global),
//! so these tests take [`ONE_AT_A_TIME`] and compare a scrape before with one after.
//! Servers without `METRICS_ADDR` (every other test's) record no request metrics.

use std::collections::HashMap;

use serde_json::json;

use crate::backend_tests;
use crate::helpers::*;

/// Servers with metrics on, one at a time (their counters are the same process-wide ones).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn spawn_with_metrics(backend: Backend) -> TestApp {
    spawn_app_with(backend, |s| {
        s.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
    })
    .await
}

/// One scrape: each sample line's name and labels (as written) to its value.
struct Scrape(HashMap<String, f64>);

impl Scrape {
    async fn of(app: &TestApp) -> Self {
        let port = app.metrics_port.expect("a metrics listener");
        let resp = app
            .client
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .await
            .expect("scraped");
        assert_eq!(resp.status(), reqwest::StatusCode::OK);
        let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        let text = resp.text().await.expect("body");
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                Some((series.to_owned(), value.parse().ok()?))
            })
            .collect();
        Self(samples)
    }

    /// The value of `name` with exactly `labels`, in any order; `None` when absent.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.0.iter().find_map(|(series, value)| {
            let rest = series.strip_prefix(name)?;
            let inner = if rest.is_empty() {
                ""
            } else {
                rest.strip_prefix('{')?.strip_suffix('}')?
            };
            let mut found: Vec<&str> = inner.split(',').filter(|p| !p.is_empty()).collect();
            let mut wanted: Vec<String> =
                labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            found.sort_unstable();
            wanted.sort_unstable();
            (found == wanted).then_some(*value)
        })
    }

    fn requests(&self, operation: &str, outcome: &str) -> f64 {
        self.get(
            "auth_graphql_requests_total",
            &[("operation", operation), ("outcome", outcome)],
        )
        .unwrap_or_else(|| panic!("no auth_graphql_requests_total for {operation}/{outcome}"))
    }

    fn timed(&self, operation: &str) -> f64 {
        self.get(
            "auth_graphql_request_duration_seconds_count",
            &[("operation", operation)],
        )
        .unwrap_or(0.0)
    }
}

async fn each_operation_is_counted_exactly_once_by_name_and_outcome(backend: Backend) {
    let _alone = ONE_AT_A_TIME.lock().await;
    let app = spawn_with_metrics(backend).await;
    let before = Scrape::of(&app).await;

    let tokens = app.register_ok("ada@example.com").await;
    for _ in 0..3 {
        app.me(Some(&tokens.access)).await.expect_success();
    }
    for _ in 0..2 {
        app.me(Some("not-a-token"))
            .await
            .expect_error("UNAUTHENTICATED");
    }
    app.login_email("ada@example.com", "wrong password!")
        .await
        .expect_error("INVALID_CREDENTIALS");
    app.login_email("ada@example.com", PASSWORD)
        .await
        .expect_success();
    // A batch counts each of its operations.
    let me = json!({"query": "{ me { id } }"});
    let batch = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&tokens.access)
        .json(&json!([me, me, {"query": "{ __typename }"}]))
        .send()
        .await
        .expect("sent");
    assert_eq!(batch.status(), reqwest::StatusCode::OK);
    // Two root fields, and a field no schema has: `other`, never the text.
    app.gql(
        "{ me { id } again: me { id } }",
        json!({}),
        Some(&tokens.access),
    )
    .await
    .expect_success();
    app.gql("{ hunter2 }", json!({}), None).await;
    app.gql("{ me { id ", json!({}), None).await;

    let after = Scrape::of(&app).await;
    let delta =
        |op: &str, outcome: &str| after.requests(op, outcome) - before.requests(op, outcome);
    assert_eq!(delta("register", "ok"), 1.0);
    assert_eq!(delta("me", "ok"), 5.0);
    assert_eq!(delta("me", "error"), 2.0);
    assert_eq!(delta("login", "ok"), 1.0);
    assert_eq!(delta("login", "error"), 1.0);
    assert_eq!(delta("introspection", "ok"), 1.0);
    assert_eq!(delta("other", "ok"), 1.0);
    assert_eq!(delta("other", "error"), 2.0);
    assert_eq!(delta("refreshToken", "ok"), 0.0);
    assert_eq!(after.timed("me") - before.timed("me"), 7.0);
    assert_eq!(after.timed("login") - before.timed("login"), 2.0);
    assert!(
        !after.0.keys().any(|k| k.contains("hunter2")),
        "client text became a label"
    );
    assert_eq!(
        after.get("auth_build_info", &[("version", env!("CARGO_PKG_VERSION"))]),
        Some(1.0)
    );
    let in_use = after.get("auth_db_pool_connections", &[("state", "in_use")]);
    let idle = after.get("auth_db_pool_connections", &[("state", "idle")]);
    assert!(
        in_use.is_some() && idle.is_some(),
        "pool gauges: {in_use:?} {idle:?}"
    );
    assert!(idle.unwrap() + in_use.unwrap() >= 1.0);
    assert!(after.get("auth_password_hash_queue_depth", &[]).is_some());
    assert!(after.timed("register") >= 1.0);
}

async fn the_metrics_listener_serves_nothing_but_metrics(backend: Backend) {
    let _alone = ONE_AT_A_TIME.lock().await;
    let app = spawn_with_metrics(backend).await;
    let port = app.metrics_port.expect("a metrics listener");
    assert_ne!(port, app.port);
    for path in ["/", "/graphql", "/health", "/metrics/x"] {
        let resp = app
            .client
            .get(format!("http://127.0.0.1:{port}{path}"))
            .send()
            .await
            .expect("sent");
        assert_eq!(resp.status(), reqwest::StatusCode::NOT_FOUND, "{path}");
    }
    // And the API's listener does not serve metrics.
    let resp = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), reqwest::StatusCode::NOT_FOUND);
}

async fn without_metrics_addr_there_is_no_metrics_listener(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.metrics_port, None);
    let resp = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), reqwest::StatusCode::NOT_FOUND);
}

/// On PostgreSQL and MySQL/MariaDB the guard reads the sessions of the requests waiting at
/// the same moment in one statement: many callers at once each get their own answer (their
/// own account, or `UNAUTHENTICATED` for a revoked session or a deleted account), every ask
/// is read exactly once, and the asks share statements. On SQLite (an inline read per
/// request) nothing is batched.
async fn concurrent_guard_reads_are_batched_and_each_answered_for_itself(backend: Backend) {
    let _alone = ONE_AT_A_TIME.lock().await;
    let app = spawn_with_metrics(backend).await;
    let mut callers = Vec::new();
    for i in 0..12 {
        let email = format!("caller{i}@example.com");
        let tokens = app.register_ok(&email).await;
        // 0–3 log out, 4–5 delete their accounts, the rest stay signed in.
        let live = match i {
            0..4 => {
                app.logout(Some(&tokens.access), None, false)
                    .await
                    .expect_success();
                false
            }
            4..6 => {
                app.delete_account(&tokens.access, PASSWORD)
                    .await
                    .expect_success();
                false
            }
            _ => true,
        };
        callers.push((email, tokens, live));
    }
    let batch = "auth_read_batch_size";
    let before = Scrape::of(&app).await;

    const ASKS: usize = 240;
    let answers = futures::future::join_all(
        (0..ASKS).map(|n| app.me(Some(&callers[n % callers.len()].1.access))),
    )
    .await;
    for (n, answer) in answers.iter().enumerate() {
        let (email, tokens, live) = &callers[n % callers.len()];
        if *live {
            answer.expect_success();
            assert_eq!(
                answer.data("me")["email"],
                email.as_str(),
                "{}",
                answer.body
            );
            assert_eq!(answer.data("me")["id"], tokens.user_id.as_str());
        } else {
            answer.expect_only_error("UNAUTHENTICATED");
        }
    }

    let after = Scrape::of(&app).await;
    let delta = |series: &str| {
        let name = format!("{batch}_{series}");
        after.get(&name, &[("read", "session")]).unwrap_or(0.0)
            - before.get(&name, &[("read", "session")]).unwrap_or(0.0)
    };
    let (reads, statements) = (delta("sum"), delta("count"));
    if backend == Backend::Sqlite {
        assert_eq!((reads, statements), (0.0, 0.0), "SQLite reads inline");
        return;
    }
    assert_eq!(reads, ASKS as f64, "each ask read exactly once");
    assert!(
        (1.0..ASKS as f64).contains(&statements),
        "{ASKS} asks at once in {statements} statements"
    );
    let widest = after
        .get(&format!("{batch}_bucket"), &[("le", "32")])
        .unwrap_or(0.0);
    let all = after.get(&format!("{batch}_bucket"), &[("le", "+Inf")]);
    assert_eq!(
        all,
        after.get(&format!("{batch}_count"), &[]),
        "buckets add up"
    );
    assert!(widest <= all.unwrap_or(0.0));
    eprintln!("{backend:?}: {ASKS} asks in {statements} statements");
}

backend_tests!(
    each_operation_is_counted_exactly_once_by_name_and_outcome,
    the_metrics_listener_serves_nothing_but_metrics,
    concurrent_guard_reads_are_batched_and_each_answered_for_itself,
    without_metrics_addr_there_is_no_metrics_listener,
);
