//! The mail rate limits (per hour): `RATE_LIMIT_MAIL_PER_ADDRESS` counts every mail
//! asked for an address, known or not, as typed and normalised; `RATE_LIMIT_MAIL_PER_IP`
//! counts them per client across addresses. Over a limit: `RATE_LIMITED`, `retryAfter`
//! and `Retry-After`.

use auth_server::Application;
use serde_json::json;

use super::mail_limits;
use crate::helpers::*;

/// Asserts `RATE_LIMITED` with a `retryAfter` within the hour that `Retry-After` repeats.
fn assert_rate_limited(r: &Gql) {
    let error = r.expect_only_error("RATE_LIMITED");
    let secs = error["extensions"]["retryAfter"]
        .as_u64()
        .unwrap_or_else(|| panic!("retryAfter in {}", r.body));
    assert!((1..=3600).contains(&secs), "retryAfter {secs}");
    let header = r
        .headers
        .get("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After header with {}", r.body));
    assert_eq!(header.to_str().unwrap(), secs.to_string());
}

fn assert_true(r: &Gql, field: &str) {
    r.expect_success();
    assert_eq!(r.data(field), true);
}

/// A second server on `app`'s database whose only limit is two mails per address; its
/// address. Accounts registered on `app` spent none of its budget.
async fn limited_instance(app: &TestApp) -> String {
    let mut settings = app.settings.clone();
    mail_limits(&mut settings, 2, 0);
    let other = Application::build(settings).await.expect("builds");
    let address = format!("http://127.0.0.1:{}", other.port());
    tokio::spawn(other.run_until(std::future::pending()));
    address
}

async fn reset_at(app: &TestApp, base: &str, email: &str) -> Gql {
    let body = json!({
        "query": "mutation($e: String!) { requestPasswordReset(email: $e) }",
        "variables": {"e": email},
    });
    app.send(app.client.post(format!("{base}/graphql")).json(&body))
        .await
}

async fn the_third_reset_request_for_an_address_is_limited_known_or_not(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("ada@example.com").await;
    let limited = limited_instance(&app).await;

    for email in ["ada@example.com", "nobody@example.com"] {
        for _ in 0..2 {
            assert_true(
                &reset_at(&app, &limited, email).await,
                "requestPasswordReset",
            );
        }
        assert_rate_limited(&reset_at(&app, &limited, email).await);
    }
}

async fn the_address_is_counted_as_normalised(backend: Backend) {
    let app = spawn_app_with(backend, |s| mail_limits(s, 2, 0)).await;
    for email in ["nobody@example.com", " Nobody@Example.COM "] {
        assert_true(
            &app.request_password_reset(email).await,
            "requestPasswordReset",
        );
    }
    assert_rate_limited(&app.request_password_reset("NOBODY@example.com").await);
    // Another address has its own budget.
    assert_true(
        &app.request_password_reset("grace@example.com").await,
        "requestPasswordReset",
    );
}

async fn register_and_verification_requests_spend_the_address_budget(backend: Backend) {
    let app = spawn_app_with(backend, |s| mail_limits(s, 2, 0)).await;
    let ada = app.register_ok("ada@example.com").await;
    assert_true(
        &app.request_email_verification(Some(&ada.access)).await,
        "requestEmailVerification",
    );
    assert_rate_limited(&app.request_email_verification(Some(&ada.access)).await);
    assert_rate_limited(&app.request_password_reset("ada@example.com").await);
}

async fn a_change_of_address_spends_the_new_addresss_budget(backend: Backend) {
    let app = spawn_app_with(backend, |s| mail_limits(s, 2, 0)).await;
    let ada = app.register_ok("ada@example.com").await;
    for _ in 0..2 {
        assert_true(
            &app.request_password_reset("ada@new.example.com").await,
            "requestPasswordReset",
        );
    }
    assert_rate_limited(
        &app.change_email(&ada.access, "ada@new.example.com", PASSWORD)
            .await,
    );
    assert_eq!(app.me_user(&ada.access).await["email"], "ada@example.com");
}

async fn the_ip_limit_counts_across_addresses(backend: Backend) {
    let app = spawn_app_with(backend, |s| mail_limits(s, 0, 2)).await;
    for email in ["a@example.com", "b@example.com"] {
        assert_true(
            &app.request_password_reset(email).await,
            "requestPasswordReset",
        );
    }
    assert_rate_limited(&app.request_password_reset("c@example.com").await);
    assert_rate_limited(&app.register("d@example.com", PASSWORD, None).await);
}

crate::backend_tests!(
    the_third_reset_request_for_an_address_is_limited_known_or_not,
    the_address_is_counted_as_normalised,
    register_and_verification_requests_spend_the_address_budget,
    a_change_of_address_spends_the_new_addresss_budget,
    the_ip_limit_counts_across_addresses,
);
