// Each test keeps its own arrange-act-assert lines, even where two read alike: each states
// one rule and reads alone.
use std::time::Instant;

use secrecy::SecretString;

use super::*;
use crate::config::RedisSettings;

fn settings(login_ip: u32, login_account: u32, register_ip: u32) -> RateLimitSettings {
    RateLimitSettings {
        login_per_ip: login_ip,
        login_per_account: login_account,
        register_per_ip: register_ip,
        mail_per_address: 0,
        mail_per_ip: 0,
        mfa_per_account: 0,
        store: LimitStore::Memory,
    }
}

fn limits(login_ip: u32, login_account: u32, register_ip: u32) -> RateLimits {
    RateLimits::new(&settings(login_ip, login_account, register_ip))
}

fn retry_after(result: Result<(), AuthError>) -> u64 {
    match result {
        Err(AuthError::RateLimited { retry_after }) => retry_after,
        other => panic!("expected RateLimited, got {other:?}"),
    }
}

#[tokio::test]
async fn the_budget_is_spent_then_refused_with_a_retry_time() {
    let l = limits(3, 0, 0);
    let ip: IpAddr = "10.1.2.3".parse().unwrap();
    for _ in 0..3 {
        l.login_from(ip).await.unwrap();
    }
    assert!((1..=20).contains(&retry_after(l.login_from(ip).await)));
    // Another address has its own budget.
    l.login_from("10.1.2.4".parse().unwrap()).await.unwrap();
}

#[tokio::test]
async fn zero_turns_a_limit_off() {
    let l = limits(0, 0, 0);
    for _ in 0..1000 {
        l.login_from("10.0.0.1".parse().unwrap()).await.unwrap();
        l.register_from("10.0.0.1".parse().unwrap()).await.unwrap();
        l.login_as("someone").await.unwrap();
    }
}

#[tokio::test]
async fn ipv6_addresses_in_one_slash_64_share_a_bucket() {
    let l = limits(1, 0, 0);
    l.login_from("2001:db8:1:2::1".parse().unwrap())
        .await
        .unwrap();
    assert!(
        l.login_from("2001:db8:1:2:ffff::9".parse().unwrap())
            .await
            .is_err()
    );
    l.login_from("2001:db8:1:3::1".parse().unwrap())
        .await
        .unwrap();
}

#[tokio::test]
async fn ipv4_mapped_addresses_count_as_ipv4() {
    let l = limits(0, 0, 1);
    l.register_from("192.0.2.7".parse().unwrap()).await.unwrap();
    assert!(
        l.register_from("::ffff:192.0.2.7".parse().unwrap())
            .await
            .is_err()
    );
}

fn mail_settings(store: LimitStore) -> RateLimitSettings {
    RateLimitSettings {
        mail_per_address: 2,
        mail_per_ip: 3,
        store,
        ..settings(0, 0, 0)
    }
}

async fn mail_is_limited_per_address_and_per_ip(l: RateLimits) {
    let ip: IpAddr = "10.9.9.9".parse().unwrap();
    l.mail(ip, "a@example.com").await.unwrap();
    l.mail(ip, "a@example.com").await.unwrap();
    // An hour's budget of 2 refills one mail every 30 minutes.
    let wait = retry_after(l.mail("10.9.9.8".parse().unwrap(), "a@example.com").await);
    assert!((1..=1800).contains(&wait), "{wait}");
    l.mail(ip, "b@example.com").await.unwrap();
    assert!(
        l.mail(ip, "c@example.com").await.is_err(),
        "the IP's budget of 3 is spent"
    );
}

#[tokio::test]
async fn mail_is_limited_per_address_and_per_ip_in_memory() {
    mail_is_limited_per_address_and_per_ip(RateLimits::new(&mail_settings(LimitStore::Memory)))
        .await;
}

#[tokio::test]
async fn accounts_are_limited_independently_of_addresses() {
    let l = limits(0, 2, 0);
    l.login_as("user-a").await.unwrap();
    l.login_as("user-a").await.unwrap();
    assert!(l.login_as("user-a").await.is_err());
    l.login_as("user-b").await.unwrap();
}

// --- Redis: the shared store. These need a Redis server (TEST_REDIS_URL at build time);
// each test writes under a prefix of its own.

fn redis_settings(url: &str, on_failure: RedisFailure) -> RedisSettings {
    RedisSettings {
        url: SecretString::from(url.to_owned()),
        timeout: Duration::from_millis(250),
        key_prefix: format!("test-{}", uuid::Uuid::new_v4().simple()),
        on_failure,
    }
}

fn test_redis_url() -> String {
    std::env::var("TEST_REDIS_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .expect("TEST_REDIS_URL is not set: this Redis test cannot run")
}

fn shared_limits(base: RateLimitSettings, redis: &RedisSettings) -> RateLimits {
    RateLimits::new(&RateLimitSettings {
        store: LimitStore::Redis(redis.clone()),
        ..base
    })
}

#[tokio::test]
#[cfg_attr(not(test_redis), ignore = "TEST_REDIS_URL was not set at build time")]
async fn instances_sharing_redis_admit_the_budget_once_between_them() {
    let redis = redis_settings(&test_redis_url(), RedisFailure::Closed);
    // Three "instances": three limiters with their own memory, one Redis.
    let instances: Vec<RateLimits> = (0..3)
        .map(|_| shared_limits(settings(0, 10, 0), &redis))
        .collect();
    let mut admitted = 0;
    for i in 0..30 {
        if instances[i % 3].login_as("user-a").await.is_ok() {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 10, "the per-account budget of 10, in total");
    // One unit comes back every 6 s: the wait says so, as governor's would.
    let wait = retry_after(instances[0].login_as("user-a").await);
    assert!((1..=6).contains(&wait), "{wait}");
    // Another account has its own budget.
    instances[1].login_as("user-b").await.unwrap();
}

#[tokio::test]
#[cfg_attr(not(test_redis), ignore = "TEST_REDIS_URL was not set at build time")]
async fn redis_gives_the_same_answers_as_governor() {
    let redis = redis_settings(&test_redis_url(), RedisFailure::Closed);
    let memory = limits(3, 0, 0);
    let shared = shared_limits(settings(3, 0, 0), &redis);
    for ip in [
        "10.1.2.3",
        "2001:db8:1:2::1",
        "2001:db8:1:2:ffff::9",
        "::ffff:10.1.2.3",
    ] {
        let ip: IpAddr = ip.parse().unwrap();
        let a = memory.login_from(ip).await.is_ok();
        let b = shared.login_from(ip).await.is_ok();
        assert_eq!(a, b, "{ip}");
    }
    for _ in 0..3 {
        let ip: IpAddr = "10.7.7.7".parse().unwrap();
        assert_eq!(
            memory.login_from(ip).await.is_ok(),
            shared.login_from(ip).await.is_ok()
        );
    }
    let ip: IpAddr = "10.7.7.7".parse().unwrap();
    let (a, b) = (
        retry_after(memory.login_from(ip).await),
        retry_after(shared.login_from(ip).await),
    );
    assert!(a.abs_diff(b) <= 1, "governor {a} s, Redis {b} s");
}

#[tokio::test]
#[cfg_attr(not(test_redis), ignore = "TEST_REDIS_URL was not set at build time")]
async fn mail_is_limited_per_address_and_per_ip_in_redis() {
    let redis = redis_settings(&test_redis_url(), RedisFailure::Closed);
    mail_is_limited_per_address_and_per_ip(RateLimits::new(&mail_settings(LimitStore::Redis(
        redis,
    ))))
    .await;
}

/// A port where nothing listens.
fn dead_redis_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("redis://127.0.0.1:{port}")
}

#[tokio::test]
async fn redis_down_fails_open_to_this_process_budgets() {
    let redis = redis_settings(&dead_redis_url(), RedisFailure::Open);
    let l = shared_limits(settings(0, 4, 0), &redis);
    let mut admitted = 0;
    for _ in 0..10 {
        if l.login_as("user-a").await.is_ok() {
            admitted += 1;
        }
    }
    assert_eq!(
        admitted, 4,
        "the per-account budget, counted in this process"
    );
}

#[tokio::test]
async fn redis_down_fails_closed_with_rate_limited() {
    let redis = redis_settings(&dead_redis_url(), RedisFailure::Closed);
    let l = shared_limits(settings(0, 4, 0), &redis);
    for _ in 0..3 {
        assert_eq!(retry_after(l.login_as("user-a").await), 1);
    }
    // A limit that is off is not refused for want of Redis.
    l.login_from("10.0.0.1".parse().unwrap()).await.unwrap();
}

#[tokio::test]
async fn a_redis_that_never_answers_costs_one_timeout_then_none() {
    // Accepts connections and never says a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let redis = redis_settings(&format!("redis://127.0.0.1:{port}"), RedisFailure::Open);
    let l = shared_limits(settings(0, 4, 0), &redis);
    let started = Instant::now();
    l.login_as("user-a").await.unwrap();
    let first = started.elapsed();
    assert!(
        first >= Duration::from_millis(200) && first < Duration::from_secs(2),
        "the first call waits for REDIS_TIMEOUT (250 ms), no longer: {first:?}"
    );
    let started = Instant::now();
    for _ in 0..3 {
        l.login_as("user-a").await.unwrap();
    }
    assert!(l.login_as("user-a").await.is_err(), "the local budget of 4");
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "while Redis rests, no call waits for it: {:?}",
        started.elapsed()
    );
    silent.abort();
}

/// A private `redis-server`, stopped when dropped.
struct PrivateRedis(std::process::Child);

impl PrivateRedis {
    /// On `port`, once it answers `PING`; `None` if it exits first (the port is taken).
    fn try_start(port: u16) -> Option<Self> {
        use std::io::{Read, Write};
        let mut child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (Debian's redis-server package) is needed for this test");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if child.try_wait().ok().flatten().is_some() {
                return None;
            }
            let pong = std::net::TcpStream::connect(("127.0.0.1", port)).and_then(|mut c| {
                c.set_read_timeout(Some(Duration::from_secs(1)))?;
                c.write_all(b"PING\r\n")?;
                let mut buf = [0u8; 5];
                c.read_exact(&mut buf).map(|()| buf)
            });
            if pong.is_ok_and(|b| &b == b"+PONG") {
                return Some(Self(child));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// On a free port (another one if a port found free is taken before Redis binds it).
    fn start_anywhere() -> (Self, u16) {
        for _ in 0..10 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            if let Some(server) = Self::try_start(port) {
                return (server, port);
            }
        }
        panic!("redis-server did not start on any of 10 free ports");
    }

    /// On `port` again, retried while the port is still held.
    fn restart(port: u16) -> Self {
        for _ in 0..50 {
            if let Some(server) = Self::try_start(port) {
                return server;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("redis-server did not start again on port {port}");
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
#[cfg_attr(not(test_redis), ignore = "TEST_REDIS_URL was not set at build time")]
async fn shared_limits_resume_when_redis_comes_back() {
    let (server, port) = PrivateRedis::start_anywhere();
    let redis = redis_settings(&format!("redis://127.0.0.1:{port}"), RedisFailure::Open);
    let a = shared_limits(settings(0, 3, 0), &redis);
    let b = shared_limits(settings(0, 3, 0), &redis);
    // Up: the two share one budget of 3 (poll until the server takes connections).
    let deadline = Instant::now() + Duration::from_secs(10);
    let admitted_while_up = loop {
        let fresh = uuid::Uuid::new_v4().to_string();
        if a.login_as(&fresh).await.is_ok()
            && a.login_as(&fresh).await.is_ok()
            && b.login_as(&fresh).await.is_ok()
            && b.login_as(&fresh).await.is_err()
            && a.login_as(&fresh).await.is_err()
        {
            break true;
        }
        assert!(Instant::now() < deadline, "the shared budget never applied");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(admitted_while_up);
    // Down: each counts on its own.
    drop(server);
    let mut admitted = 0;
    for i in 0..6 {
        let l = if i % 2 == 0 { &a } else { &b };
        if l.login_as("user-down").await.is_ok() {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 6, "3 each, in their own memory");
    // Back: shared again, without a new limiter (after the rest that follows a failure).
    let _server = PrivateRedis::restart(port);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let fresh = uuid::Uuid::new_v4().to_string();
        let mut admitted = 0;
        for i in 0..6 {
            let l = if i % 2 == 0 { &a } else { &b };
            if l.login_as(&fresh).await.is_ok() {
                admitted += 1;
            }
        }
        if admitted == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the shared budget did not resume: {admitted} admitted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
