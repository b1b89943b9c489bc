//! Adversarial floods, from the attacker's side: credential stuffing across many accounts
//! from one IP, one account from many IPs (behind a trusted proxy), an attacker rotating
//! IPv6 addresses, and login/register floods against the bounded bcrypt pool, which must
//! shed at once while `me` and `refreshToken` keep answering. Each case asserts the exact
//! codes, then that the server still answers. Timing bounds are generous ("no hang"); speed
//! ratios belong in the benchmarks.

use std::time::{Duration, Instant};

use auth_server::config::Settings;
use futures::future::join_all;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::*;

/// No hang: everything a flood asks for is answered within this.
const NO_HANG: Duration = Duration::from_secs(5);

/// The shipped rate limits (login 20/min per IP, 10/min per account), registration
/// unlimited so tests can seed accounts, behind a trusted proxy on loopback.
fn default_limits_behind_a_proxy(s: &mut Settings) {
    s.rate_limits = Settings::defaults().rate_limits;
    s.rate_limits.register_per_ip = 0;
    s.http.trusted_proxies = vec!["127.0.0.1/32".parse().expect("a CIDR")];
}

/// A login by email from `client` (the proxy's `X-Forwarded-For`).
async fn login_from(app: &TestApp, client: &str, email: &str, password: &str) -> Gql {
    let query = format!("mutation($input: LoginInput!) {{ login(input: $input) {{ {PAYLOAD} }} }}");
    app.post_json(
        json!({"query": query, "variables": {"input": {"email": email, "password": password}}}),
        None,
        &[("X-Forwarded-For", client)],
    )
    .await
}

/// Asserts `RATE_LIMITED` with a `retryAfter` within the minute and the same `Retry-After`.
fn assert_rate_limited(r: &Gql) -> u64 {
    let error = r.expect_only_error("RATE_LIMITED");
    let secs = error["extensions"]["retryAfter"]
        .as_u64()
        .unwrap_or_else(|| panic!("retryAfter in {}", r.body));
    assert!((1..=60).contains(&secs), "retryAfter {secs}");
    let header = r.headers.get("retry-after").expect("Retry-After header");
    assert_eq!(header.to_str().unwrap(), secs.to_string());
    secs
}

async fn credential_stuffing_across_many_accounts_from_one_ip_is_cut_off(backend: Backend) {
    let app = spawn_app_with(backend, default_limits_behind_a_proxy).await;
    for i in 0..5 {
        app.register_ok(&format!("user{i}@example.com")).await;
    }
    let attacker = "203.0.113.66";

    // A leaked list: a few real accounts among many unknown ones, one attempt each.
    for i in 0..30 {
        let email = if i < 5 {
            format!("user{i}@example.com")
        } else {
            format!("leaked{i}@example.com")
        };
        let r = login_from(&app, attacker, &email, "Summer2024!").await;
        if i < 20 {
            r.expect_only_error("INVALID_CREDENTIALS");
        } else {
            assert_rate_limited(&r);
        }
    }
    // Even a right password is refused from that address for now...
    assert_rate_limited(&login_from(&app, attacker, "user0@example.com", PASSWORD).await);
    // ...while the account's owner, elsewhere, logs in.
    login_from(&app, "198.51.100.1", "user0@example.com", PASSWORD)
        .await
        .expect_success();
    app.assert_still_healthy().await;
}

async fn one_account_attacked_from_many_ips_is_cut_off_by_its_account_limit(backend: Backend) {
    let app = spawn_app_with(backend, default_limits_behind_a_proxy).await;
    app.register_ok("ada@example.com").await;
    app.register_ok("bob@example.com").await;

    // A botnet: every guess from a new address, so no per-IP budget is ever spent.
    for i in 1..=15 {
        let r = login_from(
            &app,
            &format!("198.51.100.{i}"),
            "ada@example.com",
            &format!("guess number {i}"),
        )
        .await;
        if i <= 10 {
            r.expect_only_error("INVALID_CREDENTIALS");
        } else {
            assert_rate_limited(&r);
        }
    }
    // The account's budget is spent whoever asks, for at most a minute (the price of
    // refusing an online guessing attack); other accounts, from the same addresses, are not.
    assert_rate_limited(&login_from(&app, "192.0.2.200", "ada@example.com", PASSWORD).await);
    login_from(&app, "198.51.100.1", "bob@example.com", PASSWORD)
        .await
        .expect_success();
    app.assert_still_healthy().await;
}

async fn an_attacker_rotating_ipv6_addresses_within_a_64_shares_one_budget(backend: Backend) {
    let app = spawn_app_with(backend, default_limits_behind_a_proxy).await;
    app.register_ok("ada@example.com").await;

    for i in 1..=25 {
        let r = login_from(
            &app,
            &format!("2001:db8:0:7::{i:x}"),
            &format!("victim{i}@example.com"),
            "Summer2024!",
        )
        .await;
        if i <= 20 {
            r.expect_only_error("INVALID_CREDENTIALS");
        } else {
            assert_rate_limited(&r);
        }
    }
    // Another /64 has a budget of its own.
    login_from(&app, "2001:db8:0:8::1", "ada@example.com", PASSWORD)
        .await
        .expect_success();
    app.assert_still_healthy().await;
}

/// One bcrypt thread, two waiting places, and a cost that makes each verification last:
/// a flood must be shed at once, not queued.
fn a_small_hashing_pool(s: &mut Settings) {
    s.passwords.bcrypt_cost = 11;
    s.passwords.hash_workers = 1;
    s.passwords.hash_queue = 2;
}

/// Asserts the shed answer of the hashing pool: `RATE_LIMITED`, retry in one second.
fn assert_shed(r: &Gql) {
    assert_eq!(assert_rate_limited(r), 1, "{}", r.body);
}

async fn a_login_flood_is_shed_at_once_while_me_and_refresh_keep_answering(backend: Backend) {
    let app = spawn_app_with(backend, a_small_hashing_pool).await;
    app.register_ok("ada@example.com").await;
    let watcher = app.register_ok("watcher@example.com").await;

    let started = Instant::now();
    let flood = join_all((0..40).map(|_| app.login_email("ada@example.com", "wrong password")));
    // While it lasts, the watcher keeps using its session.
    let probes = async {
        let mut refresh = watcher.refresh.clone();
        let mut slowest = Duration::ZERO;
        for _ in 0..5 {
            let t = Instant::now();
            assert!(
                app.me_ok(&watcher.access).await,
                "me failed during the flood"
            );
            let r = app.refresh(&refresh).await;
            refresh = Tokens::from_payload(r.data("refreshToken")).refresh;
            slowest = slowest.max(t.elapsed());
        }
        slowest
    };
    let (answers, slowest_probe) = tokio::join!(flood, probes);
    let flood_time = started.elapsed();

    let (mut checked, mut shed) = (0, 0);
    for r in &answers {
        match r.code() {
            Some("INVALID_CREDENTIALS") => checked += 1,
            Some("RATE_LIMITED") => {
                assert_shed(r);
                shed += 1;
            }
            other => panic!("unexpected {other:?}: {}", r.body),
        }
    }
    eprintln!(
        "login flood: {checked} verified, {shed} shed in {flood_time:?}; slowest me+refresh {slowest_probe:?}"
    );
    assert!(
        shed >= 20,
        "only {shed} of 40 were shed: the queue is not bounded"
    );
    assert!(checked >= 1, "nothing was verified");
    assert!(flood_time < NO_HANG, "the flood took {flood_time:?}");
    assert!(
        slowest_probe < NO_HANG,
        "me + refresh took {slowest_probe:?}"
    );

    // Once it is over, logins are verified again.
    app.login_email("ada@example.com", PASSWORD)
        .await
        .expect_success();
    app.assert_still_healthy().await;
}

async fn a_register_flood_is_shed_and_a_shed_registration_leaves_no_account(backend: Backend) {
    let app = spawn_app_with(backend, a_small_hashing_pool).await;
    let watcher = app.register_ok("watcher@example.com").await;

    let emails: Vec<String> = (0..30).map(|i| format!("flood{i}@example.com")).collect();
    let (answers, watched) = tokio::join!(
        join_all(emails.iter().map(|e| app.register(e, PASSWORD, None))),
        app.me(Some(&watcher.access))
    );
    watched.expect_success();

    let mut shed = Vec::new();
    for (email, r) in emails.iter().zip(&answers) {
        match r.code() {
            None => r.expect_success(),
            Some("RATE_LIMITED") => {
                assert_shed(r);
                shed.push(email);
            }
            other => panic!("unexpected {other:?}: {}", r.body),
        }
    }
    assert!(shed.len() >= 10, "only {} of 30 were shed", shed.len());
    // A shed registration created nothing: the address is still free.
    for email in shed {
        app.register(email, PASSWORD, None).await.expect_success();
    }
    app.assert_still_healthy().await;
}

async fn one_request_carrying_hundreds_of_logins_spends_one_ip_budget(backend: Backend) {
    // The shipped login limits in front of the small pool. The fields of one mutation run
    // one after another, so without the per-IP limit a single request could keep the pool
    // busy for a verification per field; with it, it gets twenty per minute.
    let app = spawn_app_with(backend, |s| {
        a_small_hashing_pool(s);
        s.passwords.bcrypt_cost = 10;
        s.rate_limits = Settings::defaults().rate_limits;
        s.rate_limits.register_per_ip = 0;
    })
    .await;
    let watcher = app.register_ok("watcher@example.com").await;

    // Ten batched operations of twenty aliased logins each, every one for another address.
    let op = |n: usize| {
        let aliases: Vec<String> = (0..20)
            .map(|i| {
                format!(
                    "l{i}: login(input: {{email: \"victim{n}x{i}@example.com\", password: \"Summer2024!\"}}) {{ accessToken }}"
                )
            })
            .collect();
        json!({"query": format!("mutation {{ {} }}", aliases.join(" "))})
    };
    let started = Instant::now();
    let (r, watched) = tokio::join!(
        app.post_json(Value::Array((0..10).map(op).collect()), None, &[]),
        async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            app.me(Some(&watcher.access)).await
        }
    );
    let elapsed = started.elapsed();
    watched.expect_success();

    assert_eq!(r.status, 200, "{:.300}", r.body);
    let retry_after: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after));
    let errors: Vec<&Value> = r
        .body
        .as_array()
        .expect("a batch answers an array")
        .iter()
        .flat_map(|op| op["errors"].as_array().expect("errors").iter())
        .collect();
    assert_eq!(errors.len(), 200);
    let count = |code: &str| {
        errors
            .iter()
            .filter(|e| e["extensions"]["code"] == code)
            .count()
    };
    let (checked, refused) = (count("INVALID_CREDENTIALS"), count("RATE_LIMITED"));
    eprintln!("one request of 200 logins: {checked} verified, {refused} refused in {elapsed:?}");
    assert_eq!(checked + refused, 200);
    assert!(
        checked <= 20,
        "{checked} verifications for one client in one minute"
    );
    assert!(elapsed < NO_HANG, "the request took {elapsed:?}");
    app.assert_still_healthy().await;
}

backend_tests!(
    credential_stuffing_across_many_accounts_from_one_ip_is_cut_off,
    one_account_attacked_from_many_ips_is_cut_off_by_its_account_limit,
    an_attacker_rotating_ipv6_addresses_within_a_64_shares_one_budget,
    a_login_flood_is_shed_at_once_while_me_and_refresh_keep_answering,
    a_register_flood_is_shed_and_a_shed_registration_leaves_no_account,
    one_request_carrying_hundreds_of_logins_spends_one_ip_budget,
);
