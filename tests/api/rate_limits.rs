//! Rate limits: login per client IP and per account, register per IP, aliases and batches,
//! `X-Forwarded-For` only from trusted proxies, and `0` turning a limit off.

use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::*;

const LOGIN: &str =
    "mutation($input: LoginInput!) { login(input: $input) { accessToken user { id } } }";

/// Asserts exactly one `RATE_LIMITED` error with a `retryAfter` of at least a second that
/// the `Retry-After` header repeats; returns the seconds.
fn assert_rate_limited(r: &Gql) -> u64 {
    let error = r.expect_only_error("RATE_LIMITED");
    assert_retry_after(r, error)
}

/// `extensions.retryAfter` of `error` is whole seconds (1..=60 for per-minute budgets) and
/// the HTTP `Retry-After` header says the same.
fn assert_retry_after(r: &Gql, error: &Value) -> u64 {
    let secs = error["extensions"]["retryAfter"]
        .as_u64()
        .unwrap_or_else(|| panic!("retryAfter in {}", r.body));
    assert!((1..=60).contains(&secs), "retryAfter {secs}");
    let header = r
        .headers
        .get("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After header with {}", r.body));
    assert_eq!(header.to_str().unwrap(), secs.to_string());
    secs
}

fn login_body(input: Value) -> Value {
    json!({"query": LOGIN, "variables": {"input": input}})
}

/// A login by email sent with an `X-Forwarded-For` header.
async fn login_forwarded_for(app: &TestApp, xff: &str, email: &str, password: &str) -> Gql {
    app.post_json(
        login_body(json!({"email": email, "password": password})),
        None,
        &[("X-Forwarded-For", xff)],
    )
    .await
}

async fn logins_from_one_ip_are_refused_past_the_limit_with_a_retry_time(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.rate_limits.login_per_ip = 3).await;
    app.register_ok("ada@example.com").await;

    app.login_email("ada@example.com", PASSWORD)
        .await
        .expect_success();
    app.login_email("ada@example.com", "wrong password")
        .await
        .expect_only_error("INVALID_CREDENTIALS");
    app.login_email("grace@example.com", PASSWORD)
        .await
        .expect_only_error("INVALID_CREDENTIALS");
    let refused = app.login_email("ada@example.com", PASSWORD).await;

    assert_rate_limited(&refused);
    // Every account is refused from this address, known or not.
    assert_rate_limited(&app.login_email("someone@example.com", PASSWORD).await);
    assert_rate_limited(&app.login_username("ada", PASSWORD).await);
}

async fn failed_logins_spend_the_ip_budget(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.rate_limits.login_per_ip = 3).await;
    app.register_ok("ada@example.com").await;

    for _ in 0..3 {
        app.login_email("ada@example.com", "wrong password")
            .await
            .expect_only_error("INVALID_CREDENTIALS");
    }

    assert_rate_limited(&app.login_email("ada@example.com", PASSWORD).await);
}

async fn successful_logins_spend_the_ip_budget(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.rate_limits.login_per_ip = 3).await;
    app.register_ok("ada@example.com").await;

    for _ in 0..3 {
        app.login_email("ada@example.com", PASSWORD)
            .await
            .expect_success();
    }

    assert_rate_limited(&app.login_email("ada@example.com", PASSWORD).await);
}

async fn logins_refused_as_bad_input_spend_the_ip_budget(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.rate_limits.login_per_ip = 3).await;
    app.register("ada@example.com", PASSWORD, Some("ada"))
        .await
        .expect_success();

    app.login(json!({"password": PASSWORD}))
        .await
        .expect_bad_input("email");
    app.login(json!({"email": "ada@example.com", "username": "ada", "password": PASSWORD}))
        .await
        .expect_bad_input("email");
    app.login(json!({"email": "not an email", "password": PASSWORD}))
        .await
        .expect_bad_input("email");

    assert_rate_limited(&app.login_email("ada@example.com", PASSWORD).await);
}

async fn the_account_limit_counts_logins_by_email_and_by_username_in_one_bucket(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.rate_limits.login_per_account = 2).await;
    app.register("ada@example.com", PASSWORD, Some("Ada"))
        .await
        .expect_success();

    app.login_email("ada@example.com", PASSWORD)
        .await
        .expect_success();
    app.login_username("ada", PASSWORD).await.expect_success();

    assert_rate_limited(&app.login_email("ADA@example.com", PASSWORD).await);
    assert_rate_limited(&app.login_username("ADA", PASSWORD).await);
}

async fn the_account_limit_leaves_other_accounts_from_the_same_ip_alone(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.rate_limits.login_per_account = 2;
        s.rate_limits.login_per_ip = 10;
    })
    .await;
    app.register_ok("ada@example.com").await;
    app.register_ok("grace@example.com").await;

    app.login_email("ada@example.com", "wrong password")
        .await
        .expect_only_error("INVALID_CREDENTIALS");
    app.login_email("ada@example.com", "wrong password")
        .await
        .expect_only_error("INVALID_CREDENTIALS");
    // The right password does not get past a spent account budget.
    assert_rate_limited(&app.login_email("ada@example.com", PASSWORD).await);

    app.login_email("grace@example.com", PASSWORD)
        .await
        .expect_success();
    app.login_email("grace@example.com", PASSWORD)
        .await
        .expect_success();
    assert_rate_limited(&app.login_email("grace@example.com", PASSWORD).await);
}

async fn an_unknown_identifier_has_a_bucket_of_its_own(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.rate_limits.login_per_account = 2).await;
    app.register("ada@example.com", PASSWORD, Some("ada"))
        .await
        .expect_success();

    for _ in 0..2 {
        app.login_email("ghost@example.com", PASSWORD)
            .await
            .expect_only_error("INVALID_CREDENTIALS");
    }
    assert_rate_limited(&app.login_email(" GHOST@example.com", PASSWORD).await);

    // Neither the real account nor other unknown names share that bucket.
    app.login_email("ghost2@example.com", PASSWORD)
        .await
        .expect_only_error("INVALID_CREDENTIALS");
    app.login_username("ghost", PASSWORD)
        .await
        .expect_only_error("INVALID_CREDENTIALS");
    app.login_email("ada@example.com", PASSWORD)
        .await
        .expect_success();
    app.login_username("ada", PASSWORD).await.expect_success();
    assert_rate_limited(&app.login_email("ada@example.com", PASSWORD).await);
}

async fn aliased_logins_in_one_document_are_counted_one_by_one(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.rate_limits.login_per_ip = 3).await;
    app.register_ok("ada@example.com").await;
    let fields: String = ["a", "b", "c", "d"]
        .iter()
        .map(|alias| format!("{alias}: login(input: $input) {{ accessToken }} "))
        .collect();
    let query = format!("mutation($input: LoginInput!) {{ {fields} }}");

    let r = app
        .gql(
            &query,
            json!({"input": {"email": "ada@example.com", "password": PASSWORD}}),
            None,
        )
        .await;

    for alias in ["a", "b", "c"] {
        assert!(
            r.body["data"][alias]["accessToken"].is_string(),
            "{alias} succeeds in {}",
            r.body
        );
    }
    assert!(r.body["data"]["d"].is_null(), "d has no data in {}", r.body);
    let errors = r.body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "one refusal in {}", r.body);
    assert_eq!(errors[0]["path"], json!(["d"]));
    assert_eq!(r.code(), Some("RATE_LIMITED"));
    assert_retry_after(&r, &errors[0]);
    assert_rate_limited(&app.login_email("ada@example.com", PASSWORD).await);
}

async fn aliased_logins_of_one_account_are_counted_against_its_budget(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.rate_limits.login_per_account = 2).await;
    app.register("ada@example.com", PASSWORD, Some("ada"))
        .await
        .expect_success();
    let query = format!(
        "mutation {{ \
           a: login(input: {{email: \"ada@example.com\", password: \"{PASSWORD}\"}}) {{ accessToken }} \
           b: login(input: {{username: \"ADA\", password: \"{PASSWORD}\"}}) {{ accessToken }} \
           c: login(input: {{email: \"Ada@Example.com\", password: \"{PASSWORD}\"}}) {{ accessToken }} }}"
    );

    let r = app.gql(&query, json!({}), None).await;

    assert!(r.body["data"]["a"]["accessToken"].is_string(), "{}", r.body);
    assert!(r.body["data"]["b"]["accessToken"].is_string(), "{}", r.body);
    let errors = r.body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "one refusal in {}", r.body);
    assert_eq!(errors[0]["path"], json!(["c"]));
    assert_eq!(r.code(), Some("RATE_LIMITED"));
    assert_retry_after(&r, &errors[0]);
}

async fn batched_logins_are_counted_one_by_one(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.rate_limits.login_per_ip = 3).await;
    app.register_ok("ada@example.com").await;
    let one = login_body(json!({"email": "ada@example.com", "password": PASSWORD}));
    let batch = json!([one, one, one, one]);

    let r = app.post_json(batch, None, &[]).await;

    assert_eq!(r.status, reqwest::StatusCode::OK, "{}", r.body);
    let responses = r.body.as_array().expect("a batch answers with an array");
    assert_eq!(responses.len(), 4);
    let succeeded = responses
        .iter()
        .filter(|resp| {
            resp["data"]["login"]["accessToken"].is_string() && resp.get("errors").is_none()
        })
        .count();
    let refused: Vec<&Value> = responses
        .iter()
        .filter(|resp| resp["errors"][0]["extensions"]["code"] == "RATE_LIMITED")
        .collect();
    assert_eq!((succeeded, refused.len()), (3, 1), "in {}", r.body);
    assert_eq!(refused[0]["errors"].as_array().unwrap().len(), 1);
    assert_retry_after(&r, &refused[0]["errors"][0]);
    assert_rate_limited(&app.login_email("ada@example.com", PASSWORD).await);
}

async fn aliased_registrations_in_one_document_are_counted_one_by_one(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.rate_limits.register_per_ip = 2).await;
    let fields: String = ["a", "b", "c"]
        .iter()
        .map(|alias| {
            format!(
                "{alias}: register(input: {{email: \"{alias}@example.com\", password: \"{PASSWORD}\"}}) {{ accessToken }} "
            )
        })
        .collect();

    let r = app
        .gql(&format!("mutation {{ {fields} }}"), json!({}), None)
        .await;

    assert!(r.body["data"]["a"]["accessToken"].is_string(), "{}", r.body);
    assert!(r.body["data"]["b"]["accessToken"].is_string(), "{}", r.body);
    let errors = r.body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "one refusal in {}", r.body);
    assert_eq!(errors[0]["path"], json!(["c"]));
    assert_eq!(r.code(), Some("RATE_LIMITED"));
    assert_retry_after(&r, &errors[0]);
    app.login_email("c@example.com", PASSWORD)
        .await
        .expect_only_error("INVALID_CREDENTIALS");
}

async fn registrations_from_one_ip_are_refused_past_the_limit(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.rate_limits.register_per_ip = 2).await;

    app.register("ada@example.com", PASSWORD, None)
        .await
        .expect_success();
    app.register("grace@example.com", PASSWORD, None)
        .await
        .expect_success();
    let refused = app.register("edsger@example.com", PASSWORD, None).await;

    assert_rate_limited(&refused);
    // The refused registration created nothing; login has its own budget.
    app.login_email("edsger@example.com", PASSWORD)
        .await
        .expect_only_error("INVALID_CREDENTIALS");
    app.login_email("ada@example.com", PASSWORD)
        .await
        .expect_success();
}

async fn failed_registrations_spend_the_register_budget(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.rate_limits.register_per_ip = 2).await;
    app.register("ada@example.com", "short", None)
        .await
        .expect_bad_input("password");
    app.register("not an email", PASSWORD, None)
        .await
        .expect_bad_input("email");

    let refused = app.register("ada@example.com", PASSWORD, None).await;

    assert_rate_limited(&refused);
}

async fn forwarded_for_from_an_untrusted_peer_cannot_reset_the_budget(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.rate_limits.login_per_ip = 3).await;
    app.register_ok("ada@example.com").await;

    for i in 1..=3 {
        login_forwarded_for(
            &app,
            &format!("198.51.100.{i}"),
            "ada@example.com",
            PASSWORD,
        )
        .await
        .expect_success();
    }

    assert_rate_limited(
        &login_forwarded_for(&app, "198.51.100.4", "ada@example.com", PASSWORD).await,
    );
    assert_rate_limited(
        &login_forwarded_for(&app, "203.0.113.9, 10.0.0.1", "ada@example.com", PASSWORD).await,
    );
    assert_rate_limited(&app.login_email("ada@example.com", PASSWORD).await);
}

async fn forwarded_for_from_a_trusted_proxy_gives_each_client_its_own_budget(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.rate_limits.login_per_ip = 3;
        s.http.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    app.register_ok("ada@example.com").await;

    for _ in 0..3 {
        login_forwarded_for(&app, "198.51.100.7", "ada@example.com", PASSWORD)
            .await
            .expect_success();
    }
    assert_rate_limited(
        &login_forwarded_for(&app, "198.51.100.7", "ada@example.com", PASSWORD).await,
    );

    for _ in 0..3 {
        login_forwarded_for(&app, "198.51.100.8", "ada@example.com", PASSWORD)
            .await
            .expect_success();
    }
    assert_rate_limited(
        &login_forwarded_for(&app, "198.51.100.8", "ada@example.com", PASSWORD).await,
    );
    // The proxy's own address (no header) has a budget of its own too.
    app.login_email("ada@example.com", PASSWORD)
        .await
        .expect_success();
}

async fn a_client_behind_a_trusted_proxy_cannot_reset_its_budget_by_prepending_addresses(
    backend: Backend,
) {
    let app = spawn_app_with(backend, |s| {
        s.rate_limits.login_per_ip = 3;
        s.http.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    app.register_ok("ada@example.com").await;

    for _ in 0..3 {
        login_forwarded_for(&app, "198.51.100.7", "ada@example.com", PASSWORD)
            .await
            .expect_success();
    }

    // The proxy appends the real client; whatever the client wrote before it is not believed.
    for spoofed in ["203.0.113.1, 198.51.100.7", "203.0.113.2,198.51.100.7"] {
        assert_rate_limited(&login_forwarded_for(&app, spoofed, "ada@example.com", PASSWORD).await);
    }
}

async fn a_malformed_hop_left_of_the_client_gives_it_its_own_budget_not_the_proxys(
    backend: Backend,
) {
    let app = spawn_app_with(backend, |s| {
        s.rate_limits.login_per_ip = 3;
        s.http.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    app.register_ok("ada@example.com").await;

    // The client wrote garbage; the proxy appended the client's real address.
    for _ in 0..3 {
        login_forwarded_for(&app, "garbage, 203.0.113.5", "ada@example.com", PASSWORD)
            .await
            .expect_success();
    }
    assert_rate_limited(
        &login_forwarded_for(&app, "garbage, 203.0.113.5", "ada@example.com", PASSWORD).await,
    );

    // That was the client's own budget, whatever it writes to the left...
    assert_rate_limited(
        &login_forwarded_for(&app, "203.0.113.5", "ada@example.com", PASSWORD).await,
    );
    assert_rate_limited(
        &login_forwarded_for(
            &app,
            "198.51.100.1, junk, 203.0.113.5",
            "ada@example.com",
            PASSWORD,
        )
        .await,
    );
    // ...not the proxy's, which every other client behind it shares.
    app.login_email("ada@example.com", PASSWORD)
        .await
        .expect_success();
    login_forwarded_for(&app, "198.51.100.9", "ada@example.com", PASSWORD)
        .await
        .expect_success();
}

async fn a_limit_of_zero_turns_that_limit_off(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.rate_limits.login_per_ip = 0;
        s.rate_limits.login_per_account = 0;
        s.rate_limits.register_per_ip = 0;
    })
    .await;

    for i in 0..25 {
        app.register(&format!("user{i}@example.com"), PASSWORD, None)
            .await
            .expect_success();
    }
    for _ in 0..25 {
        app.login_email("user0@example.com", "wrong password")
            .await
            .expect_only_error("INVALID_CREDENTIALS");
    }
    app.login_email("user0@example.com", PASSWORD)
        .await
        .expect_success();
}

async fn a_zero_ip_limit_leaves_the_account_limit_in_force(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.rate_limits.login_per_ip = 0;
        s.rate_limits.login_per_account = 2;
    })
    .await;
    for i in 0..5 {
        app.register_ok(&format!("user{i}@example.com")).await;
    }

    // Ten logins from one address pass: two for each of five accounts.
    for i in 0..5 {
        for _ in 0..2 {
            app.login_email(&format!("user{i}@example.com"), PASSWORD)
                .await
                .expect_success();
        }
    }

    assert_rate_limited(&app.login_email("user0@example.com", PASSWORD).await);
}

backend_tests!(
    logins_from_one_ip_are_refused_past_the_limit_with_a_retry_time,
    failed_logins_spend_the_ip_budget,
    successful_logins_spend_the_ip_budget,
    logins_refused_as_bad_input_spend_the_ip_budget,
    the_account_limit_counts_logins_by_email_and_by_username_in_one_bucket,
    the_account_limit_leaves_other_accounts_from_the_same_ip_alone,
    an_unknown_identifier_has_a_bucket_of_its_own,
    aliased_logins_in_one_document_are_counted_one_by_one,
    aliased_logins_of_one_account_are_counted_against_its_budget,
    batched_logins_are_counted_one_by_one,
    aliased_registrations_in_one_document_are_counted_one_by_one,
    registrations_from_one_ip_are_refused_past_the_limit,
    failed_registrations_spend_the_register_budget,
    forwarded_for_from_an_untrusted_peer_cannot_reset_the_budget,
    forwarded_for_from_a_trusted_proxy_gives_each_client_its_own_budget,
    a_client_behind_a_trusted_proxy_cannot_reset_its_budget_by_prepending_addresses,
    a_malformed_hop_left_of_the_client_gives_it_its_own_budget_not_the_proxys,
    a_limit_of_zero_turns_that_limit_off,
    a_zero_ip_limit_leaves_the_account_limit_in_force,
);
