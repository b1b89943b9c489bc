//! `deleteAccount`: the password is checked like a login; then the user, its sessions,
//! tokens and pending mails are gone at once, and its address is free again.

use super::mail::Inbox;
use super::{outbox_drained, spawn};
use crate::helpers::*;
use crate::smtp::SmtpSink;
use crate::smtp_tests;

async fn a_wrong_password_is_invalid_credentials_and_deletes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;
    app.delete_account(&ada.access, "not the password")
        .await
        .expect_only_error("INVALID_CREDENTIALS");
    assert!(app.me_ok(&ada.access).await);
    app.login_email("ada@example.com", PASSWORD)
        .await
        .expect_success();
}

async fn a_wrong_password_counts_against_the_account_limit(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.rate_limits.login_per_account = 2).await;
    let ada = app.register_ok("ada@example.com").await;
    for _ in 0..2 {
        app.delete_account(&ada.access, "not the password")
            .await
            .expect_only_error("INVALID_CREDENTIALS");
    }
    app.delete_account(&ada.access, PASSWORD)
        .await
        .expect_only_error("RATE_LIMITED");
    assert!(app.me_ok(&ada.access).await);
}

async fn its_access_and_refresh_tokens_die_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;
    let login = app.login_email("ada@example.com", PASSWORD).await;
    let other = Tokens::from_payload(login.data("login"));

    let r = app.delete_account(&ada.access, PASSWORD).await;
    r.expect_success();
    assert_eq!(r.data("deleteAccount"), true);

    for session in [&ada, &other] {
        app.me(Some(&session.access))
            .await
            .expect_only_error("UNAUTHENTICATED");
        app.refresh(&session.refresh)
            .await
            .expect_only_error("INVALID_REFRESH_TOKEN");
    }
    app.login_email("ada@example.com", PASSWORD)
        .await
        .expect_only_error("INVALID_CREDENTIALS");
}

async fn its_pending_mails_leave_the_outbox_and_others_stay(backend: Backend) {
    let mut sink = SmtpSink::start();
    let (app, _clock) = spawn(backend, &sink, |_| {}).await;
    sink.stop();
    let ada = app.register_ok("ada@example.com").await;
    app.change_email(&ada.access, "ada@new.example.com", PASSWORD)
        .await
        .expect_success();
    app.register_ok("grace@example.com").await;
    // Ada's verification, change token and notice, and Grace's verification.
    assert_eq!(app.mail.queue().pending().await.unwrap(), 4);

    app.delete_account(&ada.access, PASSWORD)
        .await
        .expect_success();
    assert_eq!(app.mail.queue().pending().await.unwrap(), 1);
}

async fn its_verification_token_is_invalid_afterwards(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, _clock) = spawn(backend, &sink, |_| {}).await;
    let mut inbox = Inbox::new(&sink);
    let ada = app.register_ok("ada@example.com").await;
    let token = inbox.verification_token("ada@example.com").await;

    app.delete_account(&ada.access, PASSWORD)
        .await
        .expect_success();
    app.verify_email(&token, None)
        .await
        .expect_only_error("INVALID_TOKEN");
}

async fn its_address_can_register_again(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, _clock) = spawn(backend, &sink, |_| {}).await;
    let mut inbox = Inbox::new(&sink);
    let ada = app.register_ok("ada@example.com").await;
    let old_token = inbox.verification_token("ada@example.com").await;
    app.delete_account(&ada.access, PASSWORD)
        .await
        .expect_success();

    let again = app.register_ok("ada@example.com").await;
    assert_ne!(again.user_id, ada.user_id);
    assert!(!app.me_verified(&again.access).await);
    // The old account's token does not verify the new one; the new mail's does.
    app.verify_email(&old_token, None)
        .await
        .expect_only_error("INVALID_TOKEN");
    let token = inbox.verification_token("ada@example.com").await;
    app.verify_email(&token, None).await.expect_success();
    outbox_drained(&app).await;
}

async fn deleting_needs_a_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app
        .gql(
            "mutation { deleteAccount(password: \"correct horse battery\") }",
            serde_json::json!({}),
            None,
        )
        .await;
    r.expect_only_error("UNAUTHENTICATED");
}

crate::backend_tests!(
    a_wrong_password_is_invalid_credentials_and_deletes_nothing,
    a_wrong_password_counts_against_the_account_limit,
    its_access_and_refresh_tokens_die_at_once,
    deleting_needs_a_session,
);

smtp_tests!(
    its_pending_mails_leave_the_outbox_and_others_stay,
    its_verification_token_is_invalid_afterwards,
    its_address_can_register_again,
);
