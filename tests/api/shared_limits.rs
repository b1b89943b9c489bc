//! Rate limits shared through Redis (`RATE_LIMIT_STORE=redis`): instances on one database
//! and one Redis admit each budget once between them, over HTTP; and what a request meets
//! while Redis is down (`RATE_LIMIT_REDIS_FAILURE`) or hangs.
//!
//! The tests that need a Redis read `TEST_REDIS_URL` (compiled as ignored without it);
//! each writes under a key prefix of its own. The down and hung cases need none: they
//! point at a port where nothing listens, or at a listener that never answers.

use std::time::{Duration, Instant};

use auth_server::Collaborators;
use auth_server::config::{LimitStore, RedisFailure, RedisSettings, Settings};
use secrecy::SecretString;

use crate::helpers::*;

/// Like `backend_tests!`, for tests that also need `TEST_REDIS_URL`.
macro_rules! redis_backend_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(test_redis), ignore = "TEST_REDIS_URL was not set at build time")]
                async fn sqlite() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(all(test_redis, test_mysql)), ignore = "TEST_REDIS_URL or TEST_MYSQL_URL was not set at build time")]
                async fn mysql() {
                    $crate::helpers::Backend::Mysql.require();
                    super::$name($crate::helpers::Backend::Mysql).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(all(test_redis, test_postgres)), ignore = "TEST_REDIS_URL or TEST_POSTGRES_URL was not set at build time")]
                async fn postgres() {
                    $crate::helpers::Backend::Postgres.require();
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            }
        )*
    };
}

fn redis_store(url: String, on_failure: RedisFailure) -> LimitStore {
    LimitStore::Redis(RedisSettings {
        url: SecretString::from(url),
        timeout: Duration::from_millis(250),
        key_prefix: format!("test-{}", uuid::Uuid::new_v4().simple()),
        on_failure,
    })
}

fn test_redis_url() -> String {
    std::env::var("TEST_REDIS_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .expect("TEST_REDIS_URL is not set: this Redis test cannot run")
}

/// Three instances on one fresh database and one Redis (a key prefix of the test's own),
/// with the limits `configure` sets.
async fn three_instances(backend: Backend, configure: impl Fn(&mut Settings)) -> Vec<TestApp> {
    let store = redis_store(test_redis_url(), RedisFailure::Closed);
    let first = spawn_app_with(backend, |s| {
        configure(s);
        s.rate_limits.store = store.clone();
    })
    .await;
    let second = spawn_instance_of(&first, |_| {}, Collaborators::default()).await;
    let third = spawn_instance_of(&first, |_| {}, Collaborators::default()).await;
    vec![first, second, third]
}

async fn logins_of_one_account_across_instances_spend_one_budget(backend: Backend) {
    let apps = three_instances(backend, |s| s.rate_limits.login_per_account = 4).await;
    apps[0].register_ok("ada@example.com").await;

    let mut wrong = 0;
    let mut limited = 0;
    for i in 0..12 {
        let r = apps[i % 3]
            .login_email("ada@example.com", "wrong password")
            .await;
        match r.code() {
            Some("INVALID_CREDENTIALS") => wrong += 1,
            Some("RATE_LIMITED") => limited += 1,
            other => panic!("unexpected answer {other:?}: {}", r.body),
        }
    }

    assert_eq!(
        (wrong, limited),
        (4, 8),
        "a budget of 4, once for all three"
    );
    // The right password is refused too: the budget is the account's, wherever it lands.
    for app in &apps {
        app.login_email("ada@example.com", PASSWORD)
            .await
            .expect_only_error("RATE_LIMITED");
    }
}

async fn logins_and_registrations_from_one_ip_across_instances_spend_one_budget(backend: Backend) {
    let apps = three_instances(backend, |s| {
        s.rate_limits.login_per_ip = 5;
        s.rate_limits.register_per_ip = 4;
    })
    .await;

    let mut registered = 0;
    for i in 0..9 {
        let r = apps[i % 3]
            .register(&format!("user{i}@example.com"), PASSWORD, None)
            .await;
        match r.code() {
            None => registered += 1,
            Some("RATE_LIMITED") => {}
            other => panic!("unexpected answer {other:?}: {}", r.body),
        }
    }
    let mut answered = 0;
    for i in 0..9 {
        let r = apps[(i + 1) % 3]
            .login_email("user0@example.com", PASSWORD)
            .await;
        match r.code() {
            None => answered += 1,
            Some("RATE_LIMITED") => {}
            other => panic!("unexpected answer {other:?}: {}", r.body),
        }
    }

    assert_eq!(registered, 4, "the per-IP register budget of 4, in total");
    assert_eq!(answered, 5, "the per-IP login budget of 5, in total");
}

redis_backend_tests!(
    logins_of_one_account_across_instances_spend_one_budget,
    logins_and_registrations_from_one_ip_across_instances_spend_one_budget,
);

/// A port where nothing listens.
fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_fails_open_to_each_instances_own_budget() {
    let store = redis_store(
        format!("redis://127.0.0.1:{}", dead_port()),
        RedisFailure::Open,
    );
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.rate_limits.login_per_account = 3;
        s.rate_limits.store = store;
    })
    .await;
    app.register_ok("ada@example.com").await;

    for _ in 0..3 {
        app.login_email("ada@example.com", "wrong password")
            .await
            .expect_only_error("INVALID_CREDENTIALS");
    }

    app.login_email("ada@example.com", PASSWORD)
        .await
        .expect_only_error("RATE_LIMITED");
    app.assert_still_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_fails_closed_with_rate_limited() {
    let store = redis_store(
        format!("redis://127.0.0.1:{}", dead_port()),
        RedisFailure::Closed,
    );
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.rate_limits.login_per_account = 3;
        s.rate_limits.store = store;
    })
    .await;

    // Registration has no budget here, so Redis is not asked.
    app.register_ok("ada@example.com").await;
    let r = app.login_email("ada@example.com", PASSWORD).await;

    let error = r.expect_only_error("RATE_LIMITED");
    assert_eq!(error["extensions"]["retryAfter"], 1, "{}", r.body);
    app.assert_still_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_does_not_hang_logins() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let store = redis_store(format!("redis://127.0.0.1:{port}"), RedisFailure::Open);
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.rate_limits.login_per_ip = 100;
        s.rate_limits.store = store;
    })
    .await;
    app.register_ok("ada@example.com").await;

    let started = Instant::now();
    app.login_email("ada@example.com", PASSWORD)
        .await
        .expect_success();
    let took = started.elapsed();

    assert!(
        took < Duration::from_secs(2),
        "a login waits REDIS_TIMEOUT (250 ms) at most for Redis: {took:?}"
    );
    silent.abort();
}
