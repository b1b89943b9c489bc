//! `REQUIRE_EMAIL_VERIFICATION=true`: register creates the account and mails the token
//! but opens no session (`EMAIL_NOT_VERIFIED`); login of an unverified address with the
//! right password is `EMAIL_NOT_VERIFIED`, with a wrong one `INVALID_CREDENTIALS` (no
//! oracle); verification or a reset lets the account in.

use super::mail::Inbox;
use super::{NEW_PASSWORD, require_verification, spawn};
use crate::helpers::*;
use crate::smtp::SmtpSink;
use crate::smtp_tests;

async fn register_answers_email_not_verified_and_mails_the_token(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, _clock) = spawn(backend, &sink, require_verification).await;
    let mut inbox = Inbox::new(&sink);

    app.register("ada@example.com", PASSWORD, None)
        .await
        .expect_only_error("EMAIL_NOT_VERIFIED");

    let token = inbox.verification_token("ada@example.com").await;
    let r = app.verify_email(&token, None).await;
    r.expect_success();
    assert_eq!(r.data("verifyEmail")["email"], "ada@example.com");
}

async fn a_second_register_of_the_address_is_email_taken(backend: Backend) {
    let app = spawn_app_with(backend, require_verification).await;
    app.register("ada@example.com", PASSWORD, None)
        .await
        .expect_only_error("EMAIL_NOT_VERIFIED");
    app.register("ada@example.com", PASSWORD, None)
        .await
        .expect_only_error("EMAIL_TAKEN");
}

async fn an_unverified_login_is_refused_only_with_the_right_password(backend: Backend) {
    let app = spawn_app_with(backend, require_verification).await;
    app.register("ada@example.com", PASSWORD, Some("ada"))
        .await
        .expect_only_error("EMAIL_NOT_VERIFIED");

    app.login_email("ada@example.com", PASSWORD)
        .await
        .expect_only_error("EMAIL_NOT_VERIFIED");
    app.login_username("ada", PASSWORD)
        .await
        .expect_only_error("EMAIL_NOT_VERIFIED");
    app.login_email("ada@example.com", "not the password")
        .await
        .expect_only_error("INVALID_CREDENTIALS");
}

async fn after_verification_login_works(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, _clock) = spawn(backend, &sink, require_verification).await;
    let mut inbox = Inbox::new(&sink);
    app.register("ada@example.com", PASSWORD, None)
        .await
        .expect_only_error("EMAIL_NOT_VERIFIED");
    let token = inbox.verification_token("ada@example.com").await;
    app.verify_email(&token, None).await.expect_success();

    let r = app.login_email("ada@example.com", PASSWORD).await;
    r.expect_success();
    let tokens = Tokens::from_payload(r.data("login"));
    assert!(app.me_verified(&tokens.access).await);
}

async fn a_reset_verifies_the_address_and_lets_it_in(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, _clock) = spawn(backend, &sink, require_verification).await;
    let mut inbox = Inbox::new(&sink);
    app.register("ada@example.com", PASSWORD, None)
        .await
        .expect_only_error("EMAIL_NOT_VERIFIED");
    inbox.next_to("ada@example.com").await;
    app.request_password_reset("ada@example.com")
        .await
        .expect_success();
    let token = inbox.reset_token("ada@example.com").await;

    let r = app.reset_password(&token, NEW_PASSWORD, None).await;
    r.expect_success();
    let tokens = Tokens::from_payload(r.data("resetPassword"));
    assert!(app.me_verified(&tokens.access).await);
    app.login_email("ada@example.com", NEW_PASSWORD)
        .await
        .expect_success();
}

/// A user whose link expired has no session to ask for another: the right password
/// at login mails a fresh one (a wrong one mails nothing).
async fn a_login_with_the_right_password_mails_a_fresh_link(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, clock) = spawn(backend, &sink, require_verification).await;
    let mut inbox = Inbox::new(&sink);
    app.register("ada@example.com", PASSWORD, None)
        .await
        .expect_only_error("EMAIL_NOT_VERIFIED");
    let expired = inbox.verification_token("ada@example.com").await;
    clock.advance(std::time::Duration::from_secs(25 * 3600));
    app.verify_email(&expired, None)
        .await
        .expect_only_error("INVALID_TOKEN");

    app.login_email("ada@example.com", "not the password")
        .await
        .expect_only_error("INVALID_CREDENTIALS");
    app.login_email("ada@example.com", PASSWORD)
        .await
        .expect_only_error("EMAIL_NOT_VERIFIED");
    let fresh = inbox.verification_token("ada@example.com").await;
    app.verify_email(&fresh, None).await.expect_success();
    // Two mails in all: the wrong password sent none.
    assert_eq!(super::mail::letters_to(&sink, "ada@example.com").len(), 2);
    app.login_email("ada@example.com", PASSWORD)
        .await
        .expect_success();
}

smtp_tests!(
    a_login_with_the_right_password_mails_a_fresh_link,
    register_answers_email_not_verified_and_mails_the_token,
    after_verification_login_works,
    a_reset_verifies_the_address_and_lets_it_in,
);

crate::backend_tests!(
    a_second_register_of_the_address_is_email_taken,
    an_unverified_login_is_refused_only_with_the_right_password,
);
