//! Mailed tokens under attack, each `INVALID_TOKEN`: reuse, the wrong purpose, one
//! character changed, another user's token under one's own bearer, a superseded token,
//! a token mailed to an address the account no longer has, oversized and unicode input,
//! and two concurrent uses of one reset token.

use super::mail::Inbox;
use super::{NEW_PASSWORD, spawn};
use crate::helpers::*;
use crate::smtp::SmtpSink;
use crate::smtp_tests;

/// A registered address and its reset token, after its verification mail.
async fn reset_token(app: &TestApp, inbox: &mut Inbox<'_>, email: &str) -> String {
    app.request_password_reset(email).await.expect_success();
    inbox.reset_token(email).await
}

async fn a_used_token_is_invalid(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, _clock) = spawn(backend, &sink, |_| {}).await;
    let mut inbox = Inbox::new(&sink);
    app.register_ok("ada@example.com").await;
    let verify = inbox.verification_token("ada@example.com").await;
    app.verify_email(&verify, None).await.expect_success();
    app.verify_email(&verify, None)
        .await
        .expect_only_error("INVALID_TOKEN");

    let reset = reset_token(&app, &mut inbox, "ada@example.com").await;
    app.reset_password(&reset, NEW_PASSWORD, None)
        .await
        .expect_success();
    app.reset_password(&reset, "yet another passphrase", None)
        .await
        .expect_only_error("INVALID_TOKEN");
}

async fn a_token_for_the_other_purpose_is_invalid_and_stays_usable(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, _clock) = spawn(backend, &sink, |_| {}).await;
    let mut inbox = Inbox::new(&sink);
    app.register_ok("ada@example.com").await;
    let verify = inbox.verification_token("ada@example.com").await;
    let reset = reset_token(&app, &mut inbox, "ada@example.com").await;

    app.reset_password(&verify, NEW_PASSWORD, None)
        .await
        .expect_only_error("INVALID_TOKEN");
    app.verify_email(&reset, None)
        .await
        .expect_only_error("INVALID_TOKEN");

    app.verify_email(&verify, None).await.expect_success();
    app.reset_password(&reset, NEW_PASSWORD, None)
        .await
        .expect_success();
}

async fn a_change_email_token_cannot_reset_a_password(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, _clock) = spawn(backend, &sink, |_| {}).await;
    let mut inbox = Inbox::new(&sink);
    let ada = app.register_ok("ada@example.com").await;
    inbox.next_to("ada@example.com").await;
    app.change_email(&ada.access, "ada@new.example.com", PASSWORD)
        .await
        .expect_success();
    let change = inbox.verification_token("ada@new.example.com").await;

    app.reset_password(&change, NEW_PASSWORD, None)
        .await
        .expect_only_error("INVALID_TOKEN");
}

async fn a_token_with_one_character_changed_is_invalid(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, _clock) = spawn(backend, &sink, |_| {}).await;
    let mut inbox = Inbox::new(&sink);
    app.register_ok("ada@example.com").await;
    let token = inbox.verification_token("ada@example.com").await;
    let reset = reset_token(&app, &mut inbox, "ada@example.com").await;

    for (good, which) in [(&token, "verify"), (&reset, "reset")] {
        let mut bytes = good.clone().into_bytes();
        bytes[20] = if bytes[20] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        let r = match which {
            "verify" => app.verify_email(&tampered, None).await,
            _ => app.reset_password(&tampered, NEW_PASSWORD, None).await,
        };
        r.expect_only_error("INVALID_TOKEN");
    }
    app.verify_email(&token, None).await.expect_success();
}

async fn another_users_token_under_ones_own_bearer_is_invalid(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, _clock) = spawn(backend, &sink, |_| {}).await;
    let mut inbox = Inbox::new(&sink);
    let ada = app.register_ok("ada@example.com").await;
    inbox.next_to("ada@example.com").await;
    let grace = app.register_ok("grace@example.com").await;
    let verify = inbox.verification_token("grace@example.com").await;
    let reset = reset_token(&app, &mut inbox, "grace@example.com").await;

    app.verify_email(&verify, Some(&ada.access))
        .await
        .expect_only_error("INVALID_TOKEN");
    app.reset_password(&reset, NEW_PASSWORD, Some(&ada.access))
        .await
        .expect_only_error("INVALID_TOKEN");
    assert!(!app.me_verified(&ada.access).await);

    // Neither was spent: Grace's own use still works.
    app.verify_email(&verify, Some(&grace.access))
        .await
        .expect_success();
    app.reset_password(&reset, NEW_PASSWORD, None)
        .await
        .expect_success();
}

async fn a_superseded_token_is_invalid_and_the_newer_works(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, _clock) = spawn(backend, &sink, |_| {}).await;
    let mut inbox = Inbox::new(&sink);
    let ada = app.register_ok("ada@example.com").await;
    let first = inbox.verification_token("ada@example.com").await;
    app.request_email_verification(Some(&ada.access))
        .await
        .expect_success();
    let second = inbox.verification_token("ada@example.com").await;
    app.verify_email(&first, None)
        .await
        .expect_only_error("INVALID_TOKEN");
    app.verify_email(&second, None).await.expect_success();

    let first = reset_token(&app, &mut inbox, "ada@example.com").await;
    let second = reset_token(&app, &mut inbox, "ada@example.com").await;
    app.reset_password(&first, NEW_PASSWORD, None)
        .await
        .expect_only_error("INVALID_TOKEN");
    app.reset_password(&second, NEW_PASSWORD, None)
        .await
        .expect_success();
}

async fn tokens_mailed_to_a_former_address_are_invalid(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, _clock) = spawn(backend, &sink, |_| {}).await;
    let mut inbox = Inbox::new(&sink);
    let ada = app.register_ok("ada@example.com").await;
    let verify = inbox.verification_token("ada@example.com").await;
    let reset = reset_token(&app, &mut inbox, "ada@example.com").await;
    app.change_email(&ada.access, "ada@new.example.com", PASSWORD)
        .await
        .expect_success();
    let change = inbox.verification_token("ada@new.example.com").await;
    app.verify_email(&change, None).await.expect_success();

    app.verify_email(&verify, None)
        .await
        .expect_only_error("INVALID_TOKEN");
    app.reset_password(&reset, NEW_PASSWORD, None)
        .await
        .expect_only_error("INVALID_TOKEN");
}

async fn oversized_and_unicode_tokens_are_invalid(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.http.max_body_bytes = 512 * 1024).await;
    let ada = app.register_ok("ada@example.com").await;
    let oversized = "A".repeat(100 * 1024);
    let tokens = [
        oversized.as_str(),
        "ÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄ",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\u{0430}",
        "🔑🔑🔑🔑🔑🔑🔑🔑🔑🔑🔑",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\u{0}",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "",
    ];
    for token in tokens {
        let head: String = token.chars().take(12).collect();
        let r = app.verify_email(token, None).await;
        assert_eq!(r.code(), Some("INVALID_TOKEN"), "{head:?}: {}", r.body);
        let r = app.reset_password(token, NEW_PASSWORD, None).await;
        assert_eq!(r.code(), Some("INVALID_TOKEN"), "{head:?}: {}", r.body);
    }
    app.login_email("ada@example.com", PASSWORD)
        .await
        .expect_success();
    assert!(app.me_ok(&ada.access).await);
}

async fn of_two_concurrent_resets_with_one_token_exactly_one_wins(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, _clock) = spawn(backend, &sink, |_| {}).await;
    let mut inbox = Inbox::new(&sink);
    app.register_ok("ada@example.com").await;
    inbox.next_to("ada@example.com").await;
    for round in 0..3 {
        let token = reset_token(&app, &mut inbox, "ada@example.com").await;
        let (a, b) = tokio::join!(
            app.reset_password(&token, "first passphrase!", None),
            app.reset_password(&token, "second passphrase", None),
        );
        let wins: Vec<_> = [&a, &b]
            .into_iter()
            .filter(|r| r.body.get("errors").is_none())
            .collect();
        assert_eq!(wins.len(), 1, "round {round}: {} / {}", a.body, b.body);
        let loser = if wins[0].body == a.body { &b } else { &a };
        loser.expect_only_error("INVALID_TOKEN");
        Tokens::from_payload(wins[0].data("resetPassword"));
    }
}

smtp_tests!(
    a_used_token_is_invalid,
    a_token_for_the_other_purpose_is_invalid_and_stays_usable,
    a_change_email_token_cannot_reset_a_password,
    a_token_with_one_character_changed_is_invalid,
    another_users_token_under_ones_own_bearer_is_invalid,
    a_superseded_token_is_invalid_and_the_newer_works,
    tokens_mailed_to_a_former_address_are_invalid,
    of_two_concurrent_resets_with_one_token_exactly_one_wins,
);

crate::backend_tests!(oversized_and_unicode_tokens_are_invalid);
