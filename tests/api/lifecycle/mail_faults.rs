//! Faults on the way to the mail server, over the real flows: an SMTP outage while
//! accounts register and ask for resets, and our server killed with -9 while their mails
//! wait. Every mail arrives once, and its token still works.

use std::collections::HashMap;
use std::time::Duration;

use auth_server::entity::mail_outbox;
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use super::mail::{Inbox, Letter, letters};
use super::{APP_URL, WAIT, spawn};
use crate::helpers::*;
use crate::server_process::{self, ServerProcess};
use crate::smtp::SmtpSink;
use crate::smtp_tests;

/// Past the first retry's backoff (at most 30 s), within every token's lifetime.
const PAST_FIRST_BACKOFF: Duration = Duration::from_secs(120);

/// How many mails each recipient got.
fn per_recipient(letters: &[Letter]) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for l in letters {
        for r in &l.rcpt {
            *seen.entry(r.clone()).or_default() += 1;
        }
    }
    seen
}

fn counts(pairs: &[(&str, usize)]) -> HashMap<String, usize> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

async fn mails_asked_for_during_an_smtp_outage_arrive_once_it_ends(backend: Backend) {
    let mut sink = SmtpSink::start();
    let (app, clock) = spawn(backend, &sink, |_| {}).await;
    sink.stop();
    app.register_ok("ada@example.com").await;
    app.register_ok("grace@example.com").await;
    app.request_password_reset("ada@example.com")
        .await
        .expect_success();
    // The reset mail is queued off the request path: wait for it to be in the outbox.
    let start = std::time::Instant::now();
    while app.mail.queue().pending().await.unwrap() < 3 {
        assert!(start.elapsed() < WAIT, "the reset mail was never queued");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    app.mail.dispatch_pending().await.expect("a pass");
    assert_eq!(
        app.mail.queue().pending().await.unwrap(),
        3,
        "lost in the outage"
    );

    sink.restart();
    clock.advance(PAST_FIRST_BACKOFF);
    let start = std::time::Instant::now();
    while app.mail.queue().pending().await.unwrap() > 0 {
        assert!(start.elapsed() < WAIT, "the outbox did not empty");
        app.mail.dispatch_pending().await.expect("a pass");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let got = sink.wait_for(3, WAIT).await;
    let got: Vec<Letter> = got.iter().map(Letter::decode).collect();
    assert_eq!(
        per_recipient(&got),
        counts(&[("ada@example.com", 2), ("grace@example.com", 1)]),
        "each mail exactly once"
    );

    // The tokens they carry still work.
    let mut inbox = Inbox::new(&sink);
    let (a, b) = (
        inbox.next_to("ada@example.com").await,
        inbox.next_to("ada@example.com").await,
    );
    let (verify, reset) = if a.text.contains("/reset-password?") {
        (b, a)
    } else {
        (a, b)
    };
    let token = verify.verification_token();
    app.verify_email(&token, None).await.expect_success();
    let token = reset.reset_token();
    app.reset_password(&token, super::NEW_PASSWORD, None)
        .await
        .expect_success();
}

/// One GraphQL operation against a server process.
async fn post(server: &ServerProcess, query: &str, variables: Value) -> Value {
    reqwest::Client::new()
        .post(server.url("/graphql"))
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("a JSON answer")
}

async fn register(server: &ServerProcess, email: &str) {
    let body = post(
        server,
        "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }",
        json!({"i": {"email": email, "password": PASSWORD}}),
    )
    .await;
    assert!(body.get("errors").is_none(), "{body}");
}

/// Waits until the outbox holds `n` mails, each tried once and claimed by no one: a kill
/// in the middle of a send would leave its row claimed for `LEASE` (five minutes; that
/// case is `mail_outbox`'s lapsed claim), and this test is about the queue surviving.
async fn failed_once_and_unclaimed(database_url: &str, n: usize) {
    let db = sea_orm::Database::connect(database_url)
        .await
        .expect("connect");
    let start = std::time::Instant::now();
    loop {
        let rows = mail_outbox::Entity::find().all(&db).await.expect("read");
        let settled = rows
            .iter()
            .all(|r| r.attempts >= 1 && r.claimed_until.is_none());
        if rows.len() == n && settled {
            break;
        }
        assert!(start.elapsed() < WAIT, "the outbox never settled: {rows:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    db.close().await.ok();
}

async fn mails_queued_before_a_kill_9_arrive_after_the_restart(backend: Backend) {
    let mut sink = SmtpSink::start();
    sink.stop();
    let (_guard, url) = create_database(backend).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let smtp_url = sink.url();
    let extra = [("SMTP_URL", smtp_url.as_str()), ("APP_URL", APP_URL)];
    let mut first = server_process::spawn(dir.path(), &url, &["serve"], &extra, &[]);
    first.wait_healthy(Duration::from_secs(30)).await;
    register(&first, "ada@example.com").await;
    register(&first, "grace@example.com").await;
    failed_once_and_unclaimed(&url, 2).await;

    drop(first); // SIGKILL
    sink.restart();
    let mut second = server_process::spawn(dir.path(), &url, &["serve"], &extra, &[]);
    second.wait_healthy(Duration::from_secs(30)).await;

    // A mail that failed once waits out its first backoff (at most 30 s).
    let got = sink.wait_for(2, Duration::from_secs(45)).await;
    assert_eq!(
        per_recipient(&letters(&sink)),
        counts(&[("ada@example.com", 1), ("grace@example.com", 1)]),
        "each mail exactly once: {got:?}"
    );
    let mut inbox = Inbox::new(&sink);
    let token = inbox.verification_token("ada@example.com").await;
    let body = post(
        &second,
        "mutation($t: String!) { verifyEmail(token: $t) { emailVerified } }",
        json!({"t": token}),
    )
    .await;
    assert_eq!(body["data"]["verifyEmail"]["emailVerified"], true, "{body}");
}

smtp_tests!(
    mails_asked_for_during_an_smtp_outage_arrive_once_it_ends,
    mails_queued_before_a_kill_9_arrive_after_the_restart,
);
