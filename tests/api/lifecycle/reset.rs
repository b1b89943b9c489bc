//! The forgotten password: `requestPasswordReset` always answers `true`, mails a token to a
//! known address only, and `resetPassword` with it sets the password, revokes every
//! session, verifies the address and opens a new session.

use super::mail::{Inbox, letters_to};
use super::{NEW_PASSWORD, spawn};
use crate::helpers::*;
use crate::smtp::SmtpSink;
use crate::smtp_tests;

/// Ada's two sessions (register, login), then a reset through the mailed token.
struct AfterReset {
    app: TestApp,
    _sink: SmtpSink,
    old: [Tokens; 2],
    reset: Gql,
}

async fn reset_ada(backend: Backend) -> AfterReset {
    let sink = SmtpSink::start();
    let (app, _clock) = spawn(backend, &sink, |_| {}).await;
    let mut inbox = Inbox::new(&sink);
    let first = app.register_ok("ada@example.com").await;
    inbox.next_to("ada@example.com").await;
    let login = app.login_email("ada@example.com", PASSWORD).await;
    let second = Tokens::from_payload(login.data("login"));

    let r = app.request_password_reset("ada@example.com").await;
    r.expect_success();
    assert_eq!(r.data("requestPasswordReset"), true);
    let token = inbox.reset_token("ada@example.com").await;
    let reset = app.reset_password(&token, NEW_PASSWORD, None).await;
    reset.expect_success();
    AfterReset {
        app,
        _sink: sink,
        old: [first, second],
        reset,
    }
}

async fn a_reset_kills_the_access_tokens_of_every_old_session(backend: Backend) {
    let t = reset_ada(backend).await;
    for old in &t.old {
        t.app
            .me(Some(&old.access))
            .await
            .expect_only_error("UNAUTHENTICATED");
    }
}

async fn a_reset_kills_the_refresh_tokens_of_every_old_session(backend: Backend) {
    let t = reset_ada(backend).await;
    for old in &t.old {
        t.app
            .refresh(&old.refresh)
            .await
            .expect_only_error("INVALID_REFRESH_TOKEN");
    }
}

async fn after_a_reset_the_new_password_logs_in_and_the_old_does_not(backend: Backend) {
    let t = reset_ada(backend).await;
    t.app
        .login_email("ada@example.com", NEW_PASSWORD)
        .await
        .expect_success();
    t.app
        .login_email("ada@example.com", PASSWORD)
        .await
        .expect_only_error("INVALID_CREDENTIALS");
}

async fn the_pair_a_reset_returns_works(backend: Backend) {
    let t = reset_ada(backend).await;
    let new = Tokens::from_payload(t.reset.data("resetPassword"));
    assert_eq!(new.user_id, t.old[0].user_id);
    assert!(t.app.me_ok(&new.access).await);
    t.app.refresh(&new.refresh).await.expect_success();
}

async fn a_reset_marks_the_address_verified(backend: Backend) {
    let t = reset_ada(backend).await;
    let new = Tokens::from_payload(t.reset.data("resetPassword"));
    assert!(t.app.me_verified(&new.access).await);
}

async fn an_unknown_address_gets_true_and_no_mail(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, _clock) = spawn(backend, &sink, |_| {}).await;
    let mut inbox = Inbox::new(&sink);
    app.register_ok("ada@example.com").await;
    inbox.next_to("ada@example.com").await;

    let r = app.request_password_reset("nobody@example.com").await;
    r.expect_success();
    assert_eq!(r.data("requestPasswordReset"), true);
    // The known address is asked for after the unknown one; once its mail is in, the
    // unknown one's would have been too.
    app.request_password_reset("ada@example.com")
        .await
        .expect_success();
    inbox.next_to("ada@example.com").await.reset_token();
    super::outbox_drained(&app).await;
    assert!(letters_to(&sink, "nobody@example.com").is_empty());
}

async fn the_address_is_matched_as_normalised(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, _clock) = spawn(backend, &sink, |_| {}).await;
    let mut inbox = Inbox::new(&sink);
    app.register_ok("ada@example.com").await;
    inbox.next_to("ada@example.com").await;

    app.request_password_reset("  ADA@Example.COM ")
        .await
        .expect_success();
    let token = inbox.reset_token("ada@example.com").await;
    app.reset_password(&token, NEW_PASSWORD, None)
        .await
        .expect_success();
}

async fn a_malformed_address_is_bad_user_input(backend: Backend) {
    let app = spawn_app(backend).await;
    app.request_password_reset("not an address")
        .await
        .expect_bad_input("email");
}

async fn a_weak_new_password_is_bad_user_input_and_spends_no_token(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, _clock) = spawn(backend, &sink, |_| {}).await;
    let mut inbox = Inbox::new(&sink);
    app.register_ok("ada@example.com").await;
    inbox.next_to("ada@example.com").await;
    app.request_password_reset("ada@example.com").await;
    let token = inbox.reset_token("ada@example.com").await;

    app.reset_password(&token, "short", None)
        .await
        .expect_bad_input("newPassword");
    app.reset_password(&token, NEW_PASSWORD, None)
        .await
        .expect_success();
}

/// A mailbox alone does not pass the second factor: with TOTP on, the reset sets the
/// password and answers `MFA_REQUIRED`, and `verifyMfa` opens the session.
async fn a_reset_of_an_account_with_totp_asks_for_the_code(backend: Backend) {
    use auth_server::auth::totp::code_of_base32;
    use serde_json::json;

    let sink = SmtpSink::start();
    let (app, clock) = spawn(backend, &sink, |_| {}).await;
    let mut inbox = Inbox::new(&sink);
    let ada = app.register_ok("ada@example.com").await;
    inbox.next_to("ada@example.com").await;
    let enrolment = app
        .gql(
            "mutation { enrollTotp { secret } }",
            json!({}),
            Some(&ada.access),
        )
        .await;
    let secret = enrolment.data("enrollTotp")["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let code = code_of_base32(&secret, clock.now()).expect("a code");
    app.gql(
        "mutation($c: String!) { confirmTotp(code: $c) }",
        json!({"c": code}),
        Some(&ada.access),
    )
    .await
    .expect_success();
    clock.advance(std::time::Duration::from_secs(30));

    app.request_password_reset("ada@example.com")
        .await
        .expect_success();
    let token = inbox.reset_token("ada@example.com").await;
    let reset = app.reset_password(&token, NEW_PASSWORD, None).await;
    let error = reset.expect_only_error("MFA_REQUIRED");
    let ticket = error["extensions"]["mfaToken"].as_str().expect("mfaToken");
    // The password is set, and every old session is gone.
    app.me(Some(&ada.access))
        .await
        .expect_only_error("UNAUTHENTICATED");
    app.login_email("ada@example.com", PASSWORD)
        .await
        .expect_only_error("INVALID_CREDENTIALS");

    let code = code_of_base32(&secret, clock.now()).expect("a code");
    let verified = app
        .gql(
            &format!(
                "mutation($t: String!, $c: String!) {{ verifyMfa(mfaToken: $t, code: $c) {{ {PAYLOAD} }} }}"
            ),
            json!({"t": ticket, "c": code}),
            None,
        )
        .await;
    verified.expect_success();
    let tokens = Tokens::from_payload(verified.data("verifyMfa"));
    assert!(app.me_ok(&tokens.access).await);
}

smtp_tests!(
    a_reset_of_an_account_with_totp_asks_for_the_code,
    a_reset_kills_the_access_tokens_of_every_old_session,
    a_reset_kills_the_refresh_tokens_of_every_old_session,
    after_a_reset_the_new_password_logs_in_and_the_old_does_not,
    the_pair_a_reset_returns_works,
    a_reset_marks_the_address_verified,
    an_unknown_address_gets_true_and_no_mail,
    the_address_is_matched_as_normalised,
    a_weak_new_password_is_bad_user_input_and_spends_no_token,
);

crate::backend_tests!(a_malformed_address_is_bad_user_input);
