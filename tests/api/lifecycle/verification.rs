//! Email verification: register mails a token, `verifyEmail` with it marks the address
//! verified, `requestEmailVerification` mails a fresh one, or nothing once verified.

use super::mail::{Inbox, letters_to};
use super::spawn;
use crate::helpers::*;
use crate::smtp::SmtpSink;
use crate::smtp_tests;

async fn the_token_mailed_at_register_verifies_the_address(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, _clock) = spawn(backend, &sink, |_| {}).await;
    let mut inbox = Inbox::new(&sink);
    let ada = app.register_ok("ada@example.com").await;
    assert!(
        !app.me_verified(&ada.access).await,
        "verified before the mail"
    );

    let mail = inbox.next_to("ada@example.com").await;
    assert_eq!(mail.rcpt, ["ada@example.com"]);
    let token = mail.verification_token();
    assert!(
        !app.me_verified(&ada.access).await,
        "verified by the mail alone"
    );

    let r = app.verify_email(&token, None).await;
    r.expect_success();
    let user = r.data("verifyEmail");
    assert_eq!(user["id"], ada.user_id.as_str());
    assert_eq!(user["email"], "ada@example.com");
    assert_eq!(user["emailVerified"], true);
    assert!(app.me_verified(&ada.access).await);
}

async fn the_owner_may_verify_while_signed_in(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, _clock) = spawn(backend, &sink, |_| {}).await;
    let mut inbox = Inbox::new(&sink);
    let ada = app.register_ok("ada@example.com").await;
    let token = inbox.verification_token("ada@example.com").await;

    let r = app.verify_email(&token, Some(&ada.access)).await;
    r.expect_success();
    assert_eq!(r.data("verifyEmail")["emailVerified"], true);
}

async fn an_expired_bearer_beside_the_token_does_not_stop_it(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, clock) = spawn(backend, &sink, |_| {}).await;
    let mut inbox = Inbox::new(&sink);
    let ada = app.register_ok("ada@example.com").await;
    let grace = app.register_ok("grace@example.com").await;
    let token = inbox.verification_token("ada@example.com").await;

    // Access tokens live 15 minutes: Grace's is expired, so it names no one.
    clock.advance(std::time::Duration::from_secs(16 * 60));
    app.verify_email(&token, Some(&grace.access))
        .await
        .expect_success();
    let login = app.login_email("ada@example.com", PASSWORD).await;
    let fresh = Tokens::from_payload(login.data("login"));
    assert_eq!(fresh.user_id, ada.user_id);
    assert!(app.me_verified(&fresh.access).await);
}

async fn requesting_verification_mails_a_fresh_token_that_verifies(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, _clock) = spawn(backend, &sink, |_| {}).await;
    let mut inbox = Inbox::new(&sink);
    let ada = app.register_ok("ada@example.com").await;
    let first = inbox.verification_token("ada@example.com").await;

    let r = app.request_email_verification(Some(&ada.access)).await;
    r.expect_success();
    assert_eq!(r.data("requestEmailVerification"), true);
    let second = inbox.verification_token("ada@example.com").await;
    assert_ne!(first, second, "the same token mailed twice");

    app.verify_email(&second, None).await.expect_success();
    assert!(app.me_verified(&ada.access).await);
}

async fn a_verified_address_gets_true_and_no_mail(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, _clock) = spawn(backend, &sink, |_| {}).await;
    let mut inbox = Inbox::new(&sink);
    let ada = app.register_ok("ada@example.com").await;
    let token = inbox.verification_token("ada@example.com").await;
    app.verify_email(&token, None).await.expect_success();

    let r = app.request_email_verification(Some(&ada.access)).await;
    r.expect_success();
    assert_eq!(r.data("requestEmailVerification"), true);
    // A mail queued after it arrives; by then a mail to Ada would have been sent too.
    app.register_ok("grace@example.com").await;
    inbox.next_to("grace@example.com").await;
    super::outbox_drained(&app).await;
    assert_eq!(
        letters_to(&sink, "ada@example.com").len(),
        1,
        "a second mail"
    );
}

async fn requesting_verification_needs_a_session(backend: Backend) {
    let app = spawn_app(backend).await;
    app.request_email_verification(None)
        .await
        .expect_only_error("UNAUTHENTICATED");
}

async fn an_unknown_token_is_invalid(backend: Backend) {
    let app = spawn_app(backend).await;
    let unknown = "A".repeat(43);
    app.verify_email(&unknown, None)
        .await
        .expect_only_error("INVALID_TOKEN");
}

smtp_tests!(
    the_token_mailed_at_register_verifies_the_address,
    the_owner_may_verify_while_signed_in,
    an_expired_bearer_beside_the_token_does_not_stop_it,
    requesting_verification_mails_a_fresh_token_that_verifies,
    a_verified_address_gets_true_and_no_mail,
);

crate::backend_tests!(
    requesting_verification_needs_a_session,
    an_unknown_token_is_invalid
);
