//! `changeEmail`: a token to the new address, a notice without one to the old; the
//! address changes only when the new one is verified, and a taken address is refused at
//! the request and again at verification.

use super::mail::Inbox;
use super::spawn;
use crate::helpers::*;
use crate::smtp::SmtpSink;
use crate::smtp_tests;

/// Ada registered and asked to move to `new`; her tokens and the change token.
async fn ask_to_move(app: &TestApp, inbox: &mut Inbox<'_>, new: &str) -> (Tokens, String) {
    let ada = app.register_ok("ada@example.com").await;
    inbox.next_to("ada@example.com").await;
    let r = app.change_email(&ada.access, new, PASSWORD).await;
    r.expect_success();
    assert_eq!(r.data("changeEmail"), true);
    let token = inbox.verification_token(new).await;
    (ada, token)
}

async fn the_new_address_gets_a_token_and_the_old_a_notice(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, _clock) = spawn(backend, &sink, |_| {}).await;
    let mut inbox = Inbox::new(&sink);
    ask_to_move(&app, &mut inbox, "ada@new.example.com").await;

    let notice = inbox.next_to("ada@example.com").await;
    assert_eq!(notice.rcpt, ["ada@example.com"]);
    assert!(!notice.carries_a_token(), "the notice: {notice:?}");
    assert!(
        notice.text.contains("ada@new.example.com"),
        "the notice names the new address: {}",
        notice.text
    );
}

async fn the_address_changes_only_at_verification(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, _clock) = spawn(backend, &sink, |_| {}).await;
    let mut inbox = Inbox::new(&sink);
    let (ada, token) = ask_to_move(&app, &mut inbox, "ada@new.example.com").await;
    assert_eq!(app.me_user(&ada.access).await["email"], "ada@example.com");
    app.login_email("ada@new.example.com", PASSWORD)
        .await
        .expect_only_error("INVALID_CREDENTIALS");

    let r = app.verify_email(&token, None).await;
    r.expect_success();
    let user = r.data("verifyEmail");
    assert_eq!(user["email"], "ada@new.example.com");
    assert_eq!(user["emailVerified"], true);
    assert_eq!(
        app.me_user(&ada.access).await["email"],
        "ada@new.example.com"
    );
}

async fn after_the_change_the_new_address_logs_in_and_the_old_does_not(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, _clock) = spawn(backend, &sink, |_| {}).await;
    let mut inbox = Inbox::new(&sink);
    let (_ada, token) = ask_to_move(&app, &mut inbox, "ada@new.example.com").await;
    app.verify_email(&token, None).await.expect_success();

    app.login_email("ada@new.example.com", PASSWORD)
        .await
        .expect_success();
    app.login_email("ada@example.com", PASSWORD)
        .await
        .expect_only_error("INVALID_CREDENTIALS");
}

async fn a_taken_address_is_email_taken_at_the_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;
    app.register_ok("grace@example.com").await;
    app.change_email(&ada.access, "grace@example.com", PASSWORD)
        .await
        .expect_only_error("EMAIL_TAKEN");
    app.change_email(&ada.access, "Grace@Example.com", PASSWORD)
        .await
        .expect_only_error("EMAIL_TAKEN");
}

async fn an_address_taken_meanwhile_is_email_taken_at_verification(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, _clock) = spawn(backend, &sink, |_| {}).await;
    let mut inbox = Inbox::new(&sink);
    let (ada, token) = ask_to_move(&app, &mut inbox, "shared@example.com").await;
    app.register_ok("shared@example.com").await;

    app.verify_email(&token, None)
        .await
        .expect_only_error("EMAIL_TAKEN");
    assert_eq!(app.me_user(&ada.access).await["email"], "ada@example.com");
}

async fn a_token_refused_as_taken_works_once_the_address_is_free(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, _clock) = spawn(backend, &sink, |_| {}).await;
    let mut inbox = Inbox::new(&sink);
    let (ada, token) = ask_to_move(&app, &mut inbox, "shared@example.com").await;
    let other = app.register_ok("shared@example.com").await;
    app.verify_email(&token, None)
        .await
        .expect_only_error("EMAIL_TAKEN");

    app.delete_account(&other.access, PASSWORD)
        .await
        .expect_success();
    app.verify_email(&token, None).await.expect_success();
    assert_eq!(
        app.me_user(&ada.access).await["email"],
        "shared@example.com"
    );
}

/// `ape` in Cyrillic: it displays as `ape@example.com`.
const APE_LOOK_ALIKE: &str = "\u{430}\u{440}\u{435}@example.com";

async fn a_look_alike_of_a_taken_address_is_email_taken_at_the_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;
    app.register_ok(APE_LOOK_ALIKE).await;
    app.change_email(&ada.access, "ape@example.com", PASSWORD)
        .await
        .expect_only_error("EMAIL_TAKEN");
}

async fn a_look_alike_registered_meanwhile_is_email_taken_at_verification(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, _clock) = spawn(backend, &sink, |_| {}).await;
    let mut inbox = Inbox::new(&sink);
    let (ada, token) = ask_to_move(&app, &mut inbox, "ape@example.com").await;
    app.register_ok(APE_LOOK_ALIKE).await;

    app.verify_email(&token, None)
        .await
        .expect_only_error("EMAIL_TAKEN");
    assert_eq!(app.me_user(&ada.access).await["email"], "ada@example.com");
}

async fn of_two_accounts_verifying_one_new_address_at_once_one_wins(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, _clock) = spawn(backend, &sink, |_| {}).await;
    let mut inbox = Inbox::new(&sink);
    for name in ["ada", "grace"] {
        let tokens = app.register_ok(&format!("{name}@example.com")).await;
        app.change_email(&tokens.access, "shared@example.com", PASSWORD)
            .await
            .expect_success();
    }
    let first = inbox.verification_token("shared@example.com").await;
    let second = inbox.verification_token("shared@example.com").await;

    let (a, b) = tokio::join!(
        app.verify_email(&first, None),
        app.verify_email(&second, None)
    );
    let codes = [a.code(), b.code()];
    assert!(
        codes.contains(&None) && codes.contains(&Some("EMAIL_TAKEN")),
        "{} / {}",
        a.body,
        b.body
    );
    app.login_email("shared@example.com", PASSWORD)
        .await
        .expect_success();
}

async fn a_wrong_password_is_invalid_credentials(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;
    app.change_email(&ada.access, "ada@new.example.com", "not the password")
        .await
        .expect_only_error("INVALID_CREDENTIALS");
}

async fn a_wrong_password_counts_against_the_account_limit(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.rate_limits.login_per_account = 2).await;
    let ada = app.register_ok("ada@example.com").await;
    for _ in 0..2 {
        app.change_email(&ada.access, "ada@new.example.com", "not the password")
            .await
            .expect_only_error("INVALID_CREDENTIALS");
    }
    app.change_email(&ada.access, "ada@new.example.com", PASSWORD)
        .await
        .expect_only_error("RATE_LIMITED");
}

async fn the_same_or_a_malformed_address_is_bad_user_input(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.register_ok("ada@example.com").await;
    for new in ["ada@example.com", " ADA@example.com ", "not an address", ""] {
        app.change_email(&ada.access, new, PASSWORD)
            .await
            .expect_bad_input("newEmail");
    }
}

async fn changing_the_address_needs_a_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app
        .gql(
            "mutation { changeEmail(newEmail: \"x@example.com\", password: \"correct horse battery\") }",
            serde_json::json!({}),
            None,
        )
        .await;
    r.expect_only_error("UNAUTHENTICATED");
}

smtp_tests!(
    the_new_address_gets_a_token_and_the_old_a_notice,
    the_address_changes_only_at_verification,
    after_the_change_the_new_address_logs_in_and_the_old_does_not,
    an_address_taken_meanwhile_is_email_taken_at_verification,
    a_token_refused_as_taken_works_once_the_address_is_free,
    a_look_alike_registered_meanwhile_is_email_taken_at_verification,
    of_two_accounts_verifying_one_new_address_at_once_one_wins,
);

crate::backend_tests!(
    a_taken_address_is_email_taken_at_the_request,
    a_look_alike_of_a_taken_address_is_email_taken_at_the_request,
    a_wrong_password_is_invalid_credentials,
    a_wrong_password_counts_against_the_account_limit,
    the_same_or_a_malformed_address_is_bad_user_input,
    changing_the_address_needs_a_session,
);
