//! Token lifetimes on the service's clock (a `ManualClock`, no sleeps): verification and
//! address-change tokens live 24 hours, reset tokens one hour; just inside, they work.

use std::time::Duration;

use super::mail::Inbox;
use super::{NEW_PASSWORD, spawn};
use crate::helpers::*;
use crate::smtp::SmtpSink;
use crate::smtp_tests;

const DAY: Duration = Duration::from_secs(24 * 3600);
const HOUR: Duration = Duration::from_secs(3600);
const MINUTE: Duration = Duration::from_secs(60);

async fn a_verification_token_works_just_inside_24_hours(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, clock) = spawn(backend, &sink, |_| {}).await;
    let mut inbox = Inbox::new(&sink);
    app.register_ok("ada@example.com").await;
    let token = inbox.verification_token("ada@example.com").await;

    clock.advance(DAY - MINUTE);
    app.verify_email(&token, None).await.expect_success();
}

async fn a_verification_token_is_invalid_after_24_hours(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, clock) = spawn(backend, &sink, |_| {}).await;
    let mut inbox = Inbox::new(&sink);
    app.register_ok("ada@example.com").await;
    let token = inbox.verification_token("ada@example.com").await;

    clock.advance(DAY + Duration::from_secs(1));
    app.verify_email(&token, None)
        .await
        .expect_only_error("INVALID_TOKEN");
}

async fn a_reset_token_works_just_inside_an_hour(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, clock) = spawn(backend, &sink, |_| {}).await;
    let mut inbox = Inbox::new(&sink);
    app.register_ok("ada@example.com").await;
    inbox.next_to("ada@example.com").await;
    app.request_password_reset("ada@example.com").await;
    let token = inbox.reset_token("ada@example.com").await;

    clock.advance(HOUR - MINUTE);
    app.reset_password(&token, NEW_PASSWORD, None)
        .await
        .expect_success();
}

async fn a_reset_token_is_invalid_after_an_hour(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, clock) = spawn(backend, &sink, |_| {}).await;
    let mut inbox = Inbox::new(&sink);
    app.register_ok("ada@example.com").await;
    inbox.next_to("ada@example.com").await;
    app.request_password_reset("ada@example.com").await;
    let token = inbox.reset_token("ada@example.com").await;

    clock.advance(HOUR + Duration::from_secs(1));
    app.reset_password(&token, NEW_PASSWORD, None)
        .await
        .expect_only_error("INVALID_TOKEN");
    app.login_email("ada@example.com", PASSWORD)
        .await
        .expect_success();
}

async fn an_address_change_token_is_invalid_after_24_hours(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, clock) = spawn(backend, &sink, |_| {}).await;
    let mut inbox = Inbox::new(&sink);
    let ada = app.register_ok("ada@example.com").await;
    inbox.next_to("ada@example.com").await;
    app.change_email(&ada.access, "ada@new.example.com", PASSWORD)
        .await
        .expect_success();
    let token = inbox.verification_token("ada@new.example.com").await;

    clock.advance(DAY + Duration::from_secs(1));
    app.verify_email(&token, None)
        .await
        .expect_only_error("INVALID_TOKEN");
    app.login_email("ada@example.com", PASSWORD)
        .await
        .expect_success();
}

smtp_tests!(
    a_verification_token_works_just_inside_24_hours,
    a_verification_token_is_invalid_after_24_hours,
    a_reset_token_works_just_inside_an_hour,
    a_reset_token_is_invalid_after_an_hour,
    an_address_change_token_is_invalid_after_24_hours,
);
