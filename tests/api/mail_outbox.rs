//! Mail through the outbox to a real SMTP server (aiosmtpd, `tests/smtp/sink.py`): a
//! queued mail arrives as written; an outage loses nothing and sends nothing twice; two
//! instances on one database never send one mail twice; a claim left by a dead worker
//! lapses and its mail goes out. There are no GraphQL operations that send mail yet:
//! mails are queued through the library (`MailQueue::enqueue`).

use std::collections::HashMap;
use std::time::Duration;

use auth_server::clock::ManualClock;
use auth_server::entity::mail_outbox;
use auth_server::jobs::{MailWorker, Outcome, mail::BACKOFF_CAP, mail::LEASE};
use auth_server::mail::Mail;
use auth_server::{Application, Collaborators};
use sea_orm::{ActiveValue::Set, EntityTrait};
use secrecy::SecretString;

use crate::backend_tests;
use crate::helpers::*;
use crate::server_process::spawn;
use crate::smtp::{Received, SmtpSink};

/// As `backend_tests!`, for tests that also need the SMTP sink: ignored in a build
/// whose `python3` lacks aiosmtpd (see `crate::smtp`).
macro_rules! smtp_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(test_smtp), ignore = "python3 cannot import aiosmtpd (run .ci/smtp-deps)")]
                async fn sqlite() {
                    super::$name(crate::helpers::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(all(test_mysql, test_smtp)), ignore = "needs TEST_MYSQL_URL at build time and aiosmtpd")]
                async fn mysql() {
                    crate::helpers::Backend::Mysql.require();
                    super::$name(crate::helpers::Backend::Mysql).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(all(test_postgres, test_smtp)), ignore = "needs TEST_POSTGRES_URL at build time and aiosmtpd")]
                async fn postgres() {
                    crate::helpers::Backend::Postgres.require();
                    super::$name(crate::helpers::Backend::Postgres).await
                }
            }
        )*
    };
}

const WAIT: Duration = Duration::from_secs(15);

fn mail(n: usize) -> Mail {
    Mail {
        to: format!("user{n}@example.com"),
        subject: format!("Message {n}"),
        text: format!("Hello number {n}.\nOpen http://localhost:3000/verify to go on.\n"),
        html: None,
    }
}

/// The server on `backend`, sending to `sink`, judging time by a clock the test moves.
async fn spawn_with_sink(backend: Backend, sink: &SmtpSink) -> (TestApp, ManualClock) {
    let url = sink.url();
    spawn_app_with_clock(backend, move |s| {
        s.mail.smtp_url = Some(SecretString::from(url));
    })
    .await
}

/// A second instance on `app`'s database (same settings, same clock), serving; its worker.
async fn second_instance(app: &TestApp, clock: &ManualClock) -> MailWorker {
    let collaborators = Collaborators {
        clock: clock.clone().into(),
    };
    let other = Application::build_with(app.settings.clone(), collaborators)
        .await
        .expect("a second instance builds");
    let worker = other.mail();
    tokio::spawn(other.run_until(std::future::pending()));
    worker
}

/// Dispatches with each of `workers` at once until the outbox is empty; returns the mails
/// each reported sent.
async fn drain(workers: &[&MailWorker]) -> Vec<Outcome> {
    let queue = workers[0].queue();
    let start = std::time::Instant::now();
    let mut outcomes = Vec::new();
    while queue.pending().await.expect("count the outbox") > 0 {
        assert!(
            start.elapsed() < WAIT,
            "the outbox did not empty in {WAIT:?}"
        );
        let passes = futures::future::join_all(workers.iter().map(|w| w.dispatch_pending())).await;
        for pass in passes {
            outcomes.extend(pass.expect("a dispatch pass"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    outcomes
}

/// How many times each subject arrived.
fn subjects(messages: &[Received]) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for m in messages {
        let subject = m.header("Subject").expect("a Subject").to_owned();
        *seen.entry(subject).or_default() += 1;
    }
    seen
}

/// Asserts that the mails numbered `numbers` arrived exactly once each, and nothing else.
fn assert_each_once(messages: &[Received], numbers: impl IntoIterator<Item = usize>) {
    let seen = subjects(messages);
    let expected: HashMap<String, usize> =
        numbers.into_iter().map(|i| (mail(i).subject, 1)).collect();
    assert_eq!(seen, expected, "each mail exactly once");
}

async fn a_queued_mail_arrives_with_its_recipient_subject_and_body(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, _clock) = spawn_with_sink(backend, &sink).await;
    let mut m = mail(7);
    m.html = Some("<p>Hello number 7.</p>".to_owned());
    app.mail.queue().enqueue(&m).await.expect("queued");

    // The worker wakes on its own: no dispatch call here.
    let received = sink.wait_for(1, WAIT).await;
    assert_eq!(received.len(), 1, "{received:?}");
    let got = &received[0];
    assert_eq!(got.rcpt, ["user7@example.com"]);
    assert_eq!(got.header("To"), Some("user7@example.com"));
    let from = got.header("From").expect("a From");
    assert!(from.contains("<noreply@localhost>"), "{from}");
    assert_eq!(got.header("Subject"), Some("Message 7"));
    assert!(got.body.contains("Hello number 7."), "{}", got.body);
    assert!(got.body.contains("<p>Hello number 7.</p>"), "{}", got.body);
    let content_type = got.header("Content-Type").expect("a Content-Type");
    assert!(
        content_type.starts_with("multipart/alternative"),
        "{content_type}"
    );

    // Delivered mails leave the outbox.
    let start = std::time::Instant::now();
    while app.mail.queue().pending().await.unwrap() > 0 {
        assert!(start.elapsed() < WAIT, "the delivered row stayed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn an_smtp_outage_loses_nothing_and_sends_each_mail_once_it_ends(backend: Backend) {
    let mut sink = SmtpSink::start();
    let (app, clock) = spawn_with_sink(backend, &sink).await;
    sink.stop();
    for n in 0..5 {
        app.mail.queue().enqueue(&mail(n)).await.expect("queued");
    }
    // Every attempt fails while the server is down; the rows stay, due later.
    let outcomes = app.mail.dispatch_pending().await.expect("a pass");
    assert!(
        outcomes.iter().all(|o| matches!(o, Outcome::Retry(..))),
        "{outcomes:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.mail.queue().pending().await.unwrap(), 5);
    assert!(
        app.mail.dispatch_pending().await.unwrap().is_empty(),
        "nothing is due yet"
    );

    sink.restart();
    clock.advance(BACKOFF_CAP + Duration::from_secs(60));
    drain(&[&app.mail]).await;
    assert_each_once(&sink.wait_for(5, WAIT).await, 0..5);
}

async fn two_instances_dispatching_at_once_never_send_a_mail_twice(backend: Backend) {
    const MAILS: usize = 40;
    let mut sink = SmtpSink::start();
    let (app, clock) = spawn_with_sink(backend, &sink).await;
    let other = second_instance(&app, &clock).await;
    // Queued while the server is down, so that both instances find them all due at once.
    sink.stop();
    for n in 0..MAILS {
        app.mail.queue().enqueue(&mail(n)).await.expect("queued");
    }
    app.mail.dispatch_pending().await.expect("a pass");
    sink.restart();
    clock.advance(BACKOFF_CAP + Duration::from_secs(60));

    let outcomes = drain(&[&app.mail, &other]).await;
    let sent = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Sent(_)))
        .count();
    assert!(sent <= MAILS, "{sent} sends reported for {MAILS} mails");
    assert_each_once(&sink.wait_for(MAILS, WAIT).await, 0..MAILS);
}

async fn a_claim_left_by_a_dead_worker_is_sent_once_it_lapses(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, clock) = spawn_with_sink(backend, &sink).await;
    // A row as a worker leaves it when it dies between claiming and sending.
    let now = clock.now();
    let claimed_until = now + chrono::Duration::from_std(LEASE).unwrap();
    let m = mail(1);
    let db = sea_orm::Database::connect(&app.database_url)
        .await
        .expect("connect");
    mail_outbox::Entity::insert(mail_outbox::ActiveModel {
        id: Set(uuid::Uuid::new_v4()),
        recipient: Set(m.to.clone()),
        subject: Set(m.subject.clone()),
        text_body: Set(m.text.clone()),
        html_body: Set(None),
        created_at: Set(now),
        attempts: Set(0),
        next_attempt_at: Set(now),
        claimed_until: Set(Some(claimed_until)),
        last_error: Set(None),
        user_id: Set(None),
    })
    .exec_without_returning(&db)
    .await
    .expect("insert a claimed row");
    db.close().await.ok();

    assert!(app.mail.dispatch_pending().await.unwrap().is_empty());
    clock.advance(LEASE - Duration::from_secs(1));
    assert!(
        app.mail.dispatch_pending().await.unwrap().is_empty(),
        "taken before its claim lapsed"
    );
    assert!(sink.messages().is_empty());
    assert_eq!(app.mail.queue().pending().await.unwrap(), 1);

    clock.advance(Duration::from_secs(2));
    drain(&[&app.mail]).await;
    assert_each_once(&sink.wait_for(1, WAIT).await, [1]);
}

async fn mails_queued_when_the_server_is_killed_go_out_once_it_is_started_again(backend: Backend) {
    let mut sink = SmtpSink::start();
    sink.stop();
    let (_guard, url) = create_database(backend).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let smtp_url = sink.url();
    let extra = [("SMTP_URL", smtp_url.as_str())];
    let mut first = spawn(dir.path(), &url, &["serve"], &extra, &[]);
    first.wait_healthy(Duration::from_secs(30)).await;
    // Queued through the library on the same database; this instance is never served, so
    // only the server processes' workers send.
    let mut settings = test_settings();
    settings.database.url = SecretString::from(url.clone());
    let queuer = Application::build(settings).await.expect("builds");
    for n in 0..3 {
        queuer
            .mail()
            .queue()
            .enqueue(&mail(n))
            .await
            .expect("queued");
    }
    // kill -9, with the mails untouched or failed once (the mail server is down).
    drop(first);
    sink.restart();
    let mut second = spawn(dir.path(), &url, &["serve"], &extra, &[]);
    second.wait_healthy(Duration::from_secs(30)).await;
    // A mail that failed once waits out its first backoff (at most 30 s).
    assert_each_once(&sink.wait_for(3, Duration::from_secs(45)).await, 0..3);
    assert_eq!(queuer.mail().queue().pending().await.unwrap(), 0);
}

async fn without_smtp_url_mails_are_logged_and_leave_the_outbox(backend: Backend) {
    let (app, _clock) = spawn_app_with_clock(backend, |_| {}).await;
    assert!(app.settings.mail.smtp_url.is_none());
    app.mail.queue().enqueue(&mail(3)).await.expect("queued");
    let outcomes = drain(&[&app.mail]).await;
    assert!(
        outcomes.iter().all(|o| matches!(o, Outcome::Sent(_))),
        "{outcomes:?}"
    );
}

smtp_tests!(
    a_queued_mail_arrives_with_its_recipient_subject_and_body,
    an_smtp_outage_loses_nothing_and_sends_each_mail_once_it_ends,
    two_instances_dispatching_at_once_never_send_a_mail_twice,
    a_claim_left_by_a_dead_worker_is_sent_once_it_lapses,
    mails_queued_when_the_server_is_killed_go_out_once_it_is_started_again,
);

backend_tests!(without_smtp_url_mails_are_logged_and_leave_the_outbox);
