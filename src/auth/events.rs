//! Security events: the append-only record of what happened to accounts and sessions, for
//! the user (`securityEvents`) and the operator (the table, and one log line each).
//!
//! An event that records a change is inserted in the change's own transaction
//! ([`AuthService::record`]) and announced (logged, counted) once it commits. An event
//! with no change to ride on (a failed login, a rate-limit trip) is announced at once and
//! handed to the [`EventWriter`], which inserts what has gathered in one statement, so a
//! flood of failures costs one write per batch instead of one per request. The buffer is
//! bounded: when it is full the request inserts its own event (it waits; nothing is
//! dropped), and a clean shutdown writes what is left before the process ends.
//!
//! No event holds a password, a token or a token hash: only kinds, ids, the client's
//! address and user agent, and a short detail chosen by the server.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::AuthService;
use crate::entity::security_event;
use crate::store::Write;

/// Longest user agent kept, in characters; the rest is cut.
pub const USER_AGENT_MAX_CHARS: usize = 256;

/// Who is at the other end of a request, as the HTTP layer saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Client {
    /// `None` only for work that no request started (the command line).
    pub ip: Option<IpAddr>,
    /// Bounded to [`USER_AGENT_MAX_CHARS`], control characters removed.
    pub user_agent: Option<String>,
}

impl Client {
    pub fn new(ip: IpAddr, user_agent: Option<&str>) -> Self {
        let user_agent = user_agent
            .map(|ua| {
                ua.chars()
                    .filter(|c| !c.is_control())
                    .take(USER_AGENT_MAX_CHARS)
                    .collect::<String>()
            })
            .map(|ua| ua.trim().to_owned())
            .filter(|ua| !ua.is_empty());
        Self {
            ip: Some(ip),
            user_agent,
        }
    }

    /// The address as stored: IPv4-mapped IPv6 addresses as the IPv4 address.
    pub fn ip_text(&self) -> Option<String> {
        self.ip.map(|ip| ip.to_canonical().to_string())
    }
}

/// What happened. The names are the `kind` column and the GraphQL `kind` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Register,
    Login,
    /// A spent refresh token presented again: its session was revoked.
    RefreshReuse,
    Logout,
    /// `logout(allSessions: true)`.
    LogoutAll,
    /// `revokeSession`.
    SessionRevoked,
    /// The password asked for again (change, delete) was wrong.
    PasswordCheck,
    PasswordChanged,
    PasswordReset,
    EmailVerified,
    EmailChanged,
    AccountDeleted,
    KeyRotated,
    KeyRetired,
    RateLimited,
    /// `enrollTotp`: a pending secret.
    TotpEnrolled,
    /// `confirmTotp`: TOTP on (a wrong code is its failure).
    TotpEnabled,
    /// `disableTotp`: TOTP off, other sessions revoked.
    TotpDisabled,
    /// A wrong or reused code given to `verifyMfa` (its success is a `login`).
    MfaCode,
    /// `finishPasskeyRegistration`: a passkey added (its name is the detail).
    PasskeyAdded,
    /// `removePasskey`.
    PasskeyRemoved,
}

impl EventKind {
    pub const ALL: [EventKind; 21] = [
        Self::Register,
        Self::Login,
        Self::RefreshReuse,
        Self::Logout,
        Self::LogoutAll,
        Self::SessionRevoked,
        Self::PasswordCheck,
        Self::PasswordChanged,
        Self::PasswordReset,
        Self::EmailVerified,
        Self::EmailChanged,
        Self::AccountDeleted,
        Self::KeyRotated,
        Self::KeyRetired,
        Self::RateLimited,
        Self::TotpEnrolled,
        Self::TotpEnabled,
        Self::TotpDisabled,
        Self::MfaCode,
        Self::PasskeyAdded,
        Self::PasskeyRemoved,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Login => "login",
            Self::RefreshReuse => "refresh_reuse",
            Self::Logout => "logout",
            Self::LogoutAll => "logout_all",
            Self::SessionRevoked => "session_revoked",
            Self::PasswordCheck => "password_check",
            Self::PasswordChanged => "password_changed",
            Self::PasswordReset => "password_reset",
            Self::EmailVerified => "email_verified",
            Self::EmailChanged => "email_changed",
            Self::AccountDeleted => "account_deleted",
            Self::KeyRotated => "key_rotated",
            Self::KeyRetired => "key_retired",
            Self::RateLimited => "rate_limited",
            Self::TotpEnrolled => "totp_enrolled",
            Self::TotpEnabled => "totp_enabled",
            Self::TotpDisabled => "totp_disabled",
            Self::MfaCode => "mfa_code",
            Self::PasskeyAdded => "passkey_added",
            Self::PasskeyRemoved => "passkey_removed",
        }
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// An event about to be recorded.
#[derive(Debug, Clone)]
pub struct Event {
    kind: EventKind,
    outcome: Outcome,
    user_id: Option<Uuid>,
    session_id: Option<Uuid>,
    client: Client,
    detail: Option<String>,
}

impl Event {
    pub fn success(kind: EventKind, client: &Client) -> Self {
        Self::new(kind, Outcome::Success, client)
    }

    pub fn failure(kind: EventKind, client: &Client) -> Self {
        Self::new(kind, Outcome::Failure, client)
    }

    fn new(kind: EventKind, outcome: Outcome, client: &Client) -> Self {
        Self {
            kind,
            outcome,
            user_id: None,
            session_id: None,
            client: client.clone(),
            detail: None,
        }
    }

    pub fn user(mut self, id: Uuid) -> Self {
        self.user_id = Some(id);
        self
    }

    pub fn session(mut self, id: Uuid) -> Self {
        self.session_id = Some(id);
        self
    }

    /// A short qualifier chosen by the server (at most 128 characters are kept).
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        let mut detail: String = detail.into();
        if let Some((cut, _)) = detail.char_indices().nth(128) {
            detail.truncate(cut);
        }
        self.detail = Some(detail);
        self
    }

    pub(in crate::auth) fn row(self, at: DateTime<Utc>) -> security_event::Model {
        security_event::Model {
            id: Uuid::new_v4(),
            kind: self.kind.name().to_owned(),
            outcome: self.outcome.name().to_owned(),
            user_id: self.user_id,
            session_id: self.session_id,
            ip: self.client.ip_text(),
            user_agent: self.client.user_agent,
            detail: self.detail,
            at,
        }
    }
}

/// The one log line and the counter of an event: called once per event, when it is
/// certain (committed, or standing alone).
pub fn announce(row: &security_event::Model) {
    tracing::info!(
        target: "security_event",
        event_id = %row.id,
        kind = %row.kind,
        outcome = %row.outcome,
        user_id = row.user_id.map(tracing::field::display),
        session_id = row.session_id.map(tracing::field::display),
        ip = row.ip.as_deref(),
        user_agent = row.user_agent.as_deref(),
        detail = row.detail.as_deref(),
        at = %row.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "security event"
    );
    metrics::counter!(
        "auth_security_events_total",
        "kind" => kind_label(&row.kind),
        "outcome" => if row.outcome == "success" { "success" } else { "failure" },
    )
    .increment(1);
}

/// The bounded label of a stored kind.
fn kind_label(kind: &str) -> &'static str {
    EventKind::ALL
        .iter()
        .map(|k| k.name())
        .find(|name| *name == kind)
        .unwrap_or("other")
}

/// Events waiting for the writer; more wait in the request that makes them.
const BUFFER: usize = 8192;
/// How long the writer waits, once an event has come, for more to join its insert.
const GATHER: std::time::Duration = std::time::Duration::from_millis(25);
/// The most events one insert carries (9 columns each: well under every backend's limit of
/// bound parameters).
const BATCH: usize = 512;
/// A rate-limit trip of one limit and bucket is recorded at most this often; every refusal
/// is still counted in the metrics.
const TRIP_EVERY: chrono::Duration = chrono::Duration::seconds(60);
/// Buckets whose last trip is remembered, at most.
const TRIPS_HELD: usize = 10_000;

/// The buffer of standalone events, and the rate-limit trips recently recorded.
pub(super) struct EventLog {
    sender: mpsc::Sender<security_event::Model>,
    receiver: Mutex<Option<mpsc::Receiver<security_event::Model>>>,
    trips: Mutex<HashMap<(&'static str, String), DateTime<Utc>>>,
}

impl EventLog {
    pub(super) fn new() -> Self {
        let (sender, receiver) = mpsc::channel(BUFFER);
        Self {
            sender,
            receiver: Mutex::new(Some(receiver)),
            trips: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a trip of `limit` for `bucket` at `at` is worth an event: the first in
    /// [`TRIP_EVERY`].
    fn first_trip(&self, limit: &'static str, bucket: &str, at: DateTime<Utc>) -> bool {
        let Ok(mut trips) = self.trips.lock() else {
            return false;
        };
        if trips.len() >= TRIPS_HELD {
            trips.retain(|_, last| at - *last < TRIP_EVERY);
            if trips.len() >= TRIPS_HELD {
                // A flood over this many buckets at once: the metrics count it.
                return false;
            }
        }
        match trips.get_mut(&(limit, bucket.to_owned())) {
            Some(last) if at - *last < TRIP_EVERY => false,
            Some(last) => {
                *last = at;
                true
            }
            None => {
                trips.insert((limit, bucket.to_owned()), at);
                true
            }
        }
    }
}

impl AuthService {
    /// Inserts `event` in `write`, the transaction of the change it records; it is
    /// announced when that commits.
    pub(super) async fn record(
        &self,
        write: &Write,
        event: Event,
        at: DateTime<Utc>,
    ) -> Result<(), crate::error::AuthError> {
        write.security_events().insert(event.row(at)).await?;
        Ok(())
    }

    /// Records an event that no change carries: announced now, stored by the writer.
    pub(super) async fn record_alone(&self, event: Event) {
        let row = event.row(self.now());
        announce(&row);
        let row = match self.events.sender.try_send(row) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(row) | mpsc::error::TrySendError::Closed(row)) => {
                row
            }
        };
        // The buffer is full (or the writer has stopped): store it here, and wait for it.
        let stored = async {
            self.store.ensure_file()?;
            self.store.security_events().insert_many(vec![row]).await?;
            self.store.ensure_file()
        };
        if let Err(error) = stored.await {
            tracing::error!(%error, "a security event was not stored (it is in the log)");
        }
    }

    /// Records a rate-limit refusal of `limit` for `bucket` (the first in a minute per
    /// bucket becomes an event; each is counted).
    pub(super) async fn record_trip(
        &self,
        limit: &'static str,
        bucket: &str,
        user: Option<Uuid>,
        client: &Client,
    ) {
        if !self.events.first_trip(limit, bucket, self.now()) {
            return;
        }
        let mut event = Event::failure(EventKind::RateLimited, client).detail(limit);
        if let Some(user) = user {
            event = event.user(user);
        }
        self.record_alone(event).await;
    }

    /// Starts the task that stores standalone events; once per service (later calls get a
    /// writer with nothing to do).
    pub fn start_event_writer(self: &Arc<Self>) -> EventWriter {
        let receiver = self.events.receiver.lock().ok().and_then(|mut r| r.take());
        let closing = Arc::new(Closing::default());
        let task = receiver
            .map(|receiver| tokio::spawn(write_events(self.clone(), receiver, closing.clone())));
        EventWriter { task, closing }
    }

    /// Stores a batch of standalone events. A failure (the database down, the table
    /// locked) is retried, backing off to every 5 s, for as long as the server runs, while
    /// the buffer makes new events wait in their requests; once the server is stopping,
    /// for at most [`SHUTDOWN_PATIENCE`] more, after which the batch is given up (every
    /// event in it is in the log).
    async fn store_events(&self, batch: Vec<security_event::Model>, closing: &Closing) {
        let mut delay = std::time::Duration::from_millis(100);
        let mut deadline = None;
        loop {
            let stored = async {
                self.store.ensure_file()?;
                self.store
                    .security_events()
                    .insert_many(batch.clone())
                    .await?;
                self.store.ensure_file()
            };
            let error = match stored.await {
                Ok(()) => return,
                Err(error) => error,
            };
            if closing.flag.load(std::sync::atomic::Ordering::Relaxed) {
                let deadline = *deadline
                    .get_or_insert_with(|| tokio::time::Instant::now() + SHUTDOWN_PATIENCE);
                if tokio::time::Instant::now() >= deadline {
                    tracing::error!(%error, events = batch.len(),
                        "security events not stored before shutdown (each is in the log)");
                    return;
                }
            }
            tracing::warn!(%error, events = batch.len(), "security events not stored yet; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(std::time::Duration::from_secs(5));
        }
    }
}

/// How long a stopping server keeps retrying a batch the database refuses.
const SHUTDOWN_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// The writer's stop signal: the flag for a retry loop to see, the bell for the idle
/// writer.
#[derive(Default)]
struct Closing {
    flag: std::sync::atomic::AtomicBool,
    bell: Notify,
}

/// The running writer of standalone events.
pub struct EventWriter {
    task: Option<JoinHandle<()>>,
    closing: Arc<Closing>,
}

impl EventWriter {
    /// Stores every event still buffered, then stops. Call after the server has stopped
    /// taking requests: events recorded later are stored by their own request.
    pub async fn finish(self) {
        self.closing
            .flag
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.closing.bell.notify_one();
        if let Some(task) = self.task
            && let Err(error) = task.await
        {
            tracing::error!(%error, "the security event writer failed");
        }
    }
}

async fn write_events(
    auth: Arc<AuthService>,
    mut receiver: mpsc::Receiver<security_event::Model>,
    closing: Arc<Closing>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut closed = false;
    while !closed {
        closed = tokio::select! {
            biased;
            received = receiver.recv_many(&mut batch, BATCH) => received == 0,
            () = closing.bell.notified() => true,
        };
        if !closed && batch.len() < BATCH {
            // Let what arrives within GATHER join this batch: under a flood one commit
            // then carries many events instead of each wake-up committing a few.
            closed = tokio::select! {
                () = closing.bell.notified() => true,
                () = tokio::time::sleep(GATHER) => false,
            };
            while batch.len() < BATCH {
                match receiver.try_recv() {
                    Ok(event) => batch.push(event),
                    Err(_) => break,
                }
            }
        }
        if !batch.is_empty() {
            auth.store_events(std::mem::take(&mut batch), &closing)
                .await;
        }
    }
    // Stopping: no more sends succeed; take what was sent before.
    receiver.close();
    while receiver.recv_many(&mut batch, BATCH).await > 0 {
        auth.store_events(std::mem::take(&mut batch), &closing)
            .await;
    }
}
