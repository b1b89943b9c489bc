//! The account lifecycle of issue 13 over HTTP, with mail through a real SMTP server
//! (`crate::smtp`): verification, reset, password and address change, deletion, the
//! tokens' adversarial cases, mail faults and the mail rate limits. Each flow takes its
//! token from the mail as a user would, never from the database.

mod change_email;
mod change_password;
mod concurrency;
mod delete_account;
mod escaping;
mod mail;
mod mail_faults;
mod rate_limits;
mod require_verification;
mod reset;
mod tokens_adversarial;
mod tokens_expiry;
mod verification;

use std::time::Duration;

use auth_server::clock::ManualClock;
use auth_server::config::Settings;

use crate::helpers::{Backend, TestApp};
use crate::smtp::{SmtpSink, spawn_with_sink_and};

/// The front-end mail links point at in these tests; its path must survive in the links.
pub const APP_URL: &str = "https://app.example.test/base";

/// How long a mail may take to arrive, or the outbox to empty.
pub const WAIT: Duration = Duration::from_secs(20);

/// A password that passes validation and differs from `helpers::PASSWORD`.
pub const NEW_PASSWORD: &str = "a brand new passphrase";

/// The server on `backend`, mailing through `sink` with links to [`APP_URL`], on a clock
/// the test moves; `configure` runs last.
pub async fn spawn(
    backend: Backend,
    sink: &SmtpSink,
    configure: impl FnOnce(&mut Settings),
) -> (TestApp, ManualClock) {
    spawn_with_sink_and(backend, sink, |s| {
        s.mail.app_url = APP_URL.parse().expect("APP_URL parses");
        configure(s);
    })
    .await
}

/// `RATE_LIMIT_MAIL_PER_ADDRESS` and `RATE_LIMIT_MAIL_PER_IP` (mails per hour; 0 is off).
pub fn mail_limits(s: &mut Settings, per_address: u32, per_ip: u32) {
    s.rate_limits.mail_per_address = per_address;
    s.rate_limits.mail_per_ip = per_ip;
}

/// `REQUIRE_EMAIL_VERIFICATION=true`.
pub fn require_verification(s: &mut Settings) {
    s.accounts.require_email_verification = true;
}

/// Waits until `app`'s outbox holds nothing: every mail sent or given up.
pub async fn outbox_drained(app: &TestApp) {
    let start = std::time::Instant::now();
    while app.mail.queue().pending().await.expect("count the outbox") > 0 {
        assert!(
            start.elapsed() < WAIT,
            "the outbox did not empty in {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
