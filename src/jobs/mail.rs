//! The outbox's two ends: [`MailQueue`] writes mails and wakes the worker; [`MailWorker`]
//! claims what is due, hands it to the [`Mailer`] and records what came of each.
//!
//! The worker wakes when something is queued here, and every [`POLL`] for mails queued
//! by other instances and for retries. Rows are judged by the service's [`Clock`], so a
//! test moves time rather than waiting for a backoff or a lapsed claim. Delivery is at
//! least once: a worker that dies between sending and recording lets its claim lapse,
//! and the mail goes out again.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::clock::Clock;
use crate::entity::mail_outbox;
use crate::error::AuthError;
use crate::mail::{Mail, Mailer, SendError};
use crate::store::Store;

/// How often the outbox is looked at when nothing wakes the worker.
pub const POLL: Duration = Duration::from_secs(5);
/// How long a claim holds: longer than a batch takes to send (each SMTP command may take
/// 30 s), short enough that a dead worker's mails wait little.
pub const LEASE: Duration = Duration::from_secs(300);
/// Mails claimed at once.
const BATCH: u64 = 20;
/// Attempts before a mail is given up: with the backoff below, about a day of outage.
pub const MAX_ATTEMPTS: i32 = 30;
/// The wait after the first failure; it doubles with each further one, up to the cap.
const BACKOFF_BASE: Duration = Duration::from_secs(30);
pub const BACKOFF_CAP: Duration = Duration::from_secs(3600);

/// What came of one claimed mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted by the mail server (or logged, without one); the row is gone.
    Sent(Uuid),
    /// Failed for now; due again at the given instant.
    Retry(Uuid, DateTime<Utc>),
    /// Failed for good (refused, or too many attempts); the row is gone.
    GaveUp(Uuid),
}

/// Queues mails and wakes the worker. Clones share one worker.
#[derive(Clone)]
pub struct MailQueue {
    store: Arc<Store>,
    clock: Clock,
    wake: Arc<Notify>,
}

impl MailQueue {
    pub fn new(store: Arc<Store>, clock: Clock) -> Self {
        Self {
            store,
            clock,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Queues `mail` in a write of its own and wakes the worker. A flow that announces a
    /// change queues through `Write::outbox` in that change's transaction instead, and
    /// calls [`wake`](Self::wake) after the commit.
    pub async fn enqueue(&self, mail: &Mail) -> Result<Uuid, AuthError> {
        let write = self.store.begin_write().await?;
        let id = write.outbox().enqueue(mail, None, self.clock.now()).await?;
        self.store.commit_write(write).await?;
        self.wake();
        Ok(id)
    }

    /// The worker's bell, for flows that queue mail inside their own write.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Tells the worker there is mail; a wake while it is busy is kept for its next turn.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Mails not yet delivered, claimed or not.
    pub async fn pending(&self) -> Result<u64, AuthError> {
        Ok(self.store.outbox().count().await?)
    }
}

/// Sends what the outbox holds. Clones share the queue and the mailer.
#[derive(Clone)]
pub struct MailWorker {
    queue: MailQueue,
    mailer: Mailer,
}

impl MailWorker {
    pub fn new(queue: MailQueue, mailer: Mailer) -> Self {
        Self { queue, mailer }
    }

    pub fn queue(&self) -> &MailQueue {
        &self.queue
    }

    /// Claims and sends everything due now, batch after batch, and says what came of each
    /// mail. Mails another worker holds are left to it.
    pub async fn dispatch_pending(&self) -> Result<Vec<Outcome>, AuthError> {
        let mut outcomes = Vec::new();
        loop {
            let at = self.queue.clock.now();
            let lease = chrono::Duration::from_std(LEASE).unwrap_or(chrono::Duration::MAX);
            let batch = self.queue.store.claim_mail(at, lease, BATCH).await?;
            if batch.is_empty() {
                return Ok(outcomes);
            }
            for row in batch {
                outcomes.push(self.deliver(row).await?);
            }
        }
    }

    /// Runs until aborted: a pass at start (mails left by a previous run), then on every
    /// wake and every [`POLL`].
    pub async fn run(self) {
        let mut poll = tokio::time::interval(POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = poll.tick() => {}
                () = self.queue.wake.notified() => {}
            }
            if let Err(e) = self.dispatch_pending().await {
                tracing::warn!(error = %e, "mail dispatch failed; will retry");
            }
        }
    }

    async fn deliver(&self, row: mail_outbox::Model) -> Result<Outcome, AuthError> {
        let outbox = self.queue.store.outbox();
        let mail = Mail {
            to: row.recipient,
            subject: row.subject,
            text: row.text_body,
            html: row.html_body,
        };
        let domain = mail.recipient_domain().to_owned();
        let error = match self.mailer.send(&mail).await {
            Ok(()) => {
                outbox.delivered(row.id).await?;
                tracing::info!(to_domain = %domain, attempts = row.attempts + 1, "mail sent");
                return Ok(Outcome::Sent(row.id));
            }
            Err(e) => e,
        };
        let attempts = row.attempts.saturating_add(1);
        // A server's refusal may quote the address: logs and the row keep only its domain.
        let reason = error.to_string().replace(&mail.to, &format!("…@{domain}"));
        if matches!(error, SendError::Permanent(_)) || attempts >= MAX_ATTEMPTS {
            outbox.delivered(row.id).await?;
            tracing::error!(to_domain = %domain, attempts, error = %reason, "mail given up");
            return Ok(Outcome::GaveUp(row.id));
        }
        let wait = backoff(attempts, rand::rng().random_range(0.5..=1.0));
        let retry_at = self.queue.clock.now()
            + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
        outbox
            .failed(
                row.id,
                row.claimed_until.unwrap_or_default(),
                attempts,
                &reason,
                retry_at,
            )
            .await?;
        tracing::warn!(to_domain = %domain, attempts, error = %reason, %retry_at, "mail not sent; will retry");
        Ok(Outcome::Retry(row.id, retry_at))
    }
}

/// The wait after the `attempts`-th failure: the base doubled per earlier failure, capped,
/// times `jitter` (0.5 to 1, random) so that many instances' retries spread out.
pub fn backoff(attempts: i32, jitter: f64) -> Duration {
    let doublings = attempts.saturating_sub(1).clamp(0, 16) as u32;
    BACKOFF_BASE
        .saturating_mul(1 << doublings)
        .min(BACKOFF_CAP)
        .mul_f64(jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_from_thirty_seconds_and_stops_at_an_hour() {
        assert_eq!(backoff(1, 1.0), Duration::from_secs(30));
        assert_eq!(backoff(2, 1.0), Duration::from_secs(60));
        assert_eq!(backoff(5, 1.0), Duration::from_secs(480));
        assert_eq!(backoff(8, 1.0), BACKOFF_CAP);
        assert_eq!(backoff(MAX_ATTEMPTS, 1.0), BACKOFF_CAP);
        assert_eq!(backoff(i32::MAX, 1.0), BACKOFF_CAP);
        assert_eq!(backoff(0, 1.0), Duration::from_secs(30));
    }

    #[test]
    fn jitter_shortens_the_wait_by_at_most_half() {
        assert_eq!(backoff(2, 0.5), Duration::from_secs(30));
        assert_eq!(backoff(8, 0.5), BACKOFF_CAP / 2);
    }

    #[test]
    fn retries_span_about_a_day_before_a_mail_is_given_up() {
        let total: Duration = (1..MAX_ATTEMPTS).map(|n| backoff(n, 1.0)).sum();
        assert!(total > Duration::from_secs(20 * 3600), "{total:?}");
        assert!(total < Duration::from_secs(30 * 3600), "{total:?}");
    }
}
