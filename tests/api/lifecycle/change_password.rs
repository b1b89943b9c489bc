//! `changePassword`: every other session dies, the caller's stays with a fresh refresh
//! token, and a wrong current password is a login attempt like any other.

use super::mail::Inbox;
use super::{NEW_PASSWORD, spawn};
use crate::helpers::*;
use crate::smtp::SmtpSink;
use crate::smtp_tests;

/// Ada signed in twice: the caller (register) and another device (login).
async fn two_sessions(app: &TestApp) -> (Tokens, Tokens) {
    let caller = app.register_ok("ada@example.com").await;
    let login = app.login_email("ada@example.com", PASSWORD).await;
    (caller, Tokens::from_payload(login.data("login")))
}

async fn another_sessions_access_token_dies_and_the_callers_lives(backend: Backend) {
    let app = spawn_app(backend).await;
    let (caller, other) = two_sessions(&app).await;

    app.change_password(&caller.access, PASSWORD, NEW_PASSWORD)
        .await
        .expect_success();

    app.me(Some(&other.access))
        .await
        .expect_only_error("UNAUTHENTICATED");
    app.refresh(&other.refresh)
        .await
        .expect_only_error("INVALID_REFRESH_TOKEN");
    assert!(
        app.me_ok(&caller.access).await,
        "the caller's own access token"
    );
}

async fn the_returned_pair_works_and_the_callers_old_refresh_token_does_not(backend: Backend) {
    let app = spawn_app(backend).await;
    let (caller, _other) = two_sessions(&app).await;

    let r = app
        .change_password(&caller.access, PASSWORD, NEW_PASSWORD)
        .await;
    r.expect_success();
    let fresh = Tokens::from_payload(r.data("changePassword"));
    assert_eq!(fresh.user_id, caller.user_id);

    assert!(app.me_ok(&fresh.access).await);
    app.refresh(&caller.refresh)
        .await
        .expect_only_error("INVALID_REFRESH_TOKEN");
    app.refresh(&fresh.refresh).await.expect_success();
}

async fn the_new_password_logs_in_and_the_old_does_not(backend: Backend) {
    let app = spawn_app(backend).await;
    let (caller, _other) = two_sessions(&app).await;
    app.change_password(&caller.access, PASSWORD, NEW_PASSWORD)
        .await
        .expect_success();

    app.login_email("ada@example.com", NEW_PASSWORD)
        .await
        .expect_success();
    app.login_email("ada@example.com", PASSWORD)
        .await
        .expect_only_error("INVALID_CREDENTIALS");
}

async fn a_wrong_current_password_counts_against_the_account_limit(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.rate_limits.login_per_account = 2).await;
    let ada = app.register_ok("ada@example.com").await;

    for _ in 0..2 {
        app.change_password(&ada.access, "not the password", NEW_PASSWORD)
            .await
            .expect_only_error("INVALID_CREDENTIALS");
    }
    let refused = app
        .change_password(&ada.access, PASSWORD, NEW_PASSWORD)
        .await;
    let error = refused.expect_only_error("RATE_LIMITED");
    assert!(
        error["extensions"]["retryAfter"].as_u64().is_some(),
        "{}",
        refused.body
    );
    assert!(refused.headers.contains_key("retry-after"));
    // The account's login shares the bucket.
    app.login_email("ada@example.com", PASSWORD)
        .await
        .expect_only_error("RATE_LIMITED");
}

async fn a_weak_new_password_is_bad_user_input(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;
    app.change_password(&ada.access, PASSWORD, "short")
        .await
        .expect_bad_input("newPassword");
    app.login_email("ada@example.com", PASSWORD)
        .await
        .expect_success();
}

async fn changing_the_password_needs_a_session(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register_ok("ada@example.com").await;
    let r = app
        .gql(
            "mutation { changePassword(currentPassword: \"correct horse battery\", newPassword: \"a brand new passphrase\") { accessToken } }",
            serde_json::json!({}),
            None,
        )
        .await;
    r.expect_only_error("UNAUTHENTICATED");
}

async fn a_password_change_spends_pending_reset_tokens(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, _clock) = spawn(backend, &sink, |_| {}).await;
    let mut inbox = Inbox::new(&sink);
    let ada = app.register_ok("ada@example.com").await;
    inbox.next_to("ada@example.com").await;
    app.request_password_reset("ada@example.com").await;
    let token = inbox.reset_token("ada@example.com").await;

    app.change_password(&ada.access, PASSWORD, NEW_PASSWORD)
        .await
        .expect_success();

    app.reset_password(&token, "yet another passphrase", None)
        .await
        .expect_only_error("INVALID_TOKEN");
    app.login_email("ada@example.com", NEW_PASSWORD)
        .await
        .expect_success();
}

crate::backend_tests!(
    another_sessions_access_token_dies_and_the_callers_lives,
    the_returned_pair_works_and_the_callers_old_refresh_token_does_not,
    the_new_password_logs_in_and_the_old_does_not,
    a_wrong_current_password_counts_against_the_account_limit,
    a_weak_new_password_is_bad_user_input,
    changing_the_password_needs_a_session,
);

smtp_tests!(a_password_change_spends_pending_reset_tokens);
