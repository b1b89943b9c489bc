//! The auth service: accounts, sessions and tokens. Knows nothing of GraphQL or HTTP.
//!
//! One file per flow: [`accounts`] (register, login), [`sessions`] (open, authenticate,
//! logout, purge), [`rotation`] (refresh), [`verification`] (proving an address, and
//! changing it), [`recovery`] (a forgotten password), [`credentials`] (changing the
//! password, deleting the account), [`totp`] (the second factor: enrol, confirm,
//! disable), [`mfa`] (a login that needs it: the challenge and `verifyMfa`) and
//! [`passkeys`] (WebAuthn: adding, listing and removing passkeys, logging in and signing
//! up with one).
//! [`mailing`] is how a flow mails a token. [`events`]
//! records what happened, for the user and the operator; [`session_list`] shows a user
//! their sessions and revokes one. Every query is in `crate::store`.

mod accounts;
mod credentials;
pub mod events;
mod mailing;
mod mfa;
mod model;
mod passkeys;
mod passwords;
mod rate_limit;
mod recovery;
mod rotation;
mod session_list;
mod sessions;
pub mod tokens;
pub mod totp;
mod verification;

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, Semaphore};

pub use accounts::LoginIdentifier;
pub use events::{Client, EventWriter};
pub use mailing::Outgoing;
pub use model::{Account, Issued, Principal};
pub use passkeys::{PasskeyChallenge, PasskeyInfo};
pub use passwords::PasswordHasher;
pub use rate_limit::RateLimits;
pub use session_list::{EventPage, SessionInfo};
use tokens::TokenKeys;
use tokens::signing::{self, KeyRing, LoadError, StartError};
pub use totp::TotpEnrollment;

use crate::clock::Clock;
use crate::config::{Environment, Settings};
use crate::error::AuthError;
use crate::mail::{Sealer, Templates};
use crate::storage::DatabaseFile;
use crate::store::Store;

/// Everything the auth service needs, built once from settings.
pub struct AuthService {
    store: Store,
    clock: Clock,
    keys: TokenKeys,
    passwords: PasswordHasher,
    limits: RateLimits,
    access_ttl: chrono::Duration,
    refresh_ttl: chrono::Duration,
    reuse_grace: chrono::Duration,
    verification_ttl: chrono::Duration,
    reset_ttl: chrono::Duration,
    require_verification: bool,
    outgoing: Outgoing,
    /// Password-reset requests being worked on off the request path (see `recovery`).
    background: Arc<Semaphore>,
    /// Standalone security events on their way to the table.
    events: events::EventLog,
    /// How long security events are kept.
    events_retention: chrono::Duration,
    /// The WebAuthn relying party; `None` when passkeys are off.
    webauthn: Option<Arc<webauthn_rs::Webauthn>>,
}

/// Password-reset requests worked on at once off the request path; more wait for a slot
/// (in the request, whatever the address), so a flood cannot pile up tasks.
const BACKGROUND_SLOTS: usize = 32;

fn chrono_duration(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl AuthService {
    /// The service on the system clock.
    pub fn new(db: sea_orm::DatabaseConnection, settings: &Settings) -> Self {
        Self::with_clock(db, settings, Clock::System)
    }

    /// The service judging time by `clock` (call it after migrating), with the built-in
    /// mail templates and no mail worker to wake (see [`with_mail`](Self::with_mail)).
    pub fn with_clock(db: sea_orm::DatabaseConnection, settings: &Settings, clock: Clock) -> Self {
        use secrecy::ExposeSecret;
        Self {
            store: Store::new(db, settings.database.url.expose_secret()),
            clock,
            keys: TokenKeys::new(&settings.tokens),
            passwords: PasswordHasher::new(&settings.passwords),
            limits: RateLimits::new(&settings.rate_limits),
            access_ttl: chrono_duration(settings.tokens.access_ttl),
            refresh_ttl: chrono_duration(settings.tokens.refresh_ttl),
            reuse_grace: chrono_duration(settings.tokens.reuse_grace),
            verification_ttl: chrono_duration(settings.accounts.verification_ttl),
            reset_ttl: chrono_duration(settings.accounts.reset_ttl),
            require_verification: settings.accounts.require_email_verification,
            outgoing: Outgoing {
                templates: Templates::built_in(),
                sealer: Sealer::new(&settings.tokens),
                app_url: settings.mail.app_url.clone(),
                wake: Arc::new(Notify::new()),
            },
            background: Arc::new(Semaphore::new(BACKGROUND_SLOTS)),
            events: events::EventLog::new(),
            events_retention: chrono_duration(settings.accounts.security_events_retention),
            webauthn: passkeys::relying_party(settings.passkeys.as_ref()).map(Arc::new),
        }
    }

    /// On an SQLite file, refresh-token rotations commit in groups from now on (see
    /// `crate::store::Store::with_group_commit`).
    pub async fn with_group_commit(mut self, settings: &Settings) -> Self {
        self.store = self
            .store
            .with_group_commit(settings.database.statement_timeout)
            .await;
        self
    }

    /// The service making mails from `templates` and waking the worker with `wake`.
    pub fn with_mail(mut self, templates: Templates, wake: Arc<Notify>) -> Self {
        self.outgoing.templates = templates;
        self.outgoing.wake = wake;
        self
    }

    pub fn passwords(&self) -> &PasswordHasher {
        &self.passwords
    }

    pub fn limits(&self) -> &RateLimits {
        &self.limits
    }

    /// The SQLite file this service writes to, for `/health` to watch too.
    pub fn database_file(&self) -> Option<Arc<DatabaseFile>> {
        self.store.database_file()
    }

    /// The keys access tokens are signed with, which the JWKS publishes.
    pub fn signing_keys(&self) -> &Arc<KeyRing> {
        self.keys.access.ring()
    }

    /// Takes the signing keys into service at start. Stored keys are read from the
    /// database; a development database without one gets its first key (production
    /// refuses to start instead). Configured keys need nothing.
    pub async fn start_signing_keys(&self, settings: &Settings) -> Result<(), StartError> {
        let ring = self.signing_keys();
        if !ring.is_stored() {
            return Ok(());
        }
        let now = self.now();
        if settings.environment == Environment::Development
            && let Some(kid) =
                signing::admin::ensure_signing_key(&self.store, &settings.tokens, now).await?
        {
            tracing::warn!(
                %kid,
                "no signing key was stored; made one (in production, run `auth-server keys rotate`)"
            );
        }
        ring.load(&self.store, now).await?;
        if !ring.can_sign(now) {
            return Err(StartError::NoSigningKey);
        }
        Ok(())
    }

    /// Re-reads the stored signing keys, so a rotation made anywhere takes effect here (a
    /// no-op for configured keys). On failure the keys held stay in service.
    pub async fn reload_signing_keys(&self) -> Result<(), LoadError> {
        self.signing_keys().load(&self.store, self.now()).await
    }

    /// The store, for tests that look under the service.
    #[cfg(test)]
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// The token keys, for tests that mint their own.
    #[cfg(test)]
    pub(crate) fn keys(&self) -> &TokenKeys {
        &self.keys
    }

    /// The current instant, by the service's clock (microseconds).
    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Counts a registration attempt from `client` (before the input is even looked at).
    pub async fn count_register_attempt(&self, client: &Client) -> Result<(), AuthError> {
        let Some(ip) = client.ip else { return Ok(()) };
        let counted = self.limits.register_from(ip).await;
        self.trip_on(counted, "register_ip", ip, client).await
    }

    /// Counts a login attempt from `client` (before the input is even looked at).
    pub async fn count_login_attempt(&self, client: &Client) -> Result<(), AuthError> {
        let Some(ip) = client.ip else { return Ok(()) };
        let counted = self.limits.login_from(ip).await;
        if counted.is_err() {
            metrics::counter!("auth_logins_total", "outcome" => "rate_limited").increment(1);
        }
        self.trip_on(counted, "login_ip", ip, client).await
    }

    /// Counts a mail asked for by `client` to `address` (normalised; known or not).
    pub async fn count_mail(&self, client: &Client, address: &str) -> Result<(), AuthError> {
        let Some(ip) = client.ip else { return Ok(()) };
        match self.limits.mail(ip, address).await {
            Err(refused @ AuthError::RateLimited { .. }) => {
                // Which of the two budgets refused is the limiter's business; the event
                // names the pair.
                self.record_trip("mail", &format!("{ip}/{address}"), None, client)
                    .await;
                Err(refused)
            }
            other => other,
        }
    }

    /// Records a refusal of the per-IP `limit` as a rate-limit trip.
    async fn trip_on(
        &self,
        counted: Result<(), AuthError>,
        limit: &'static str,
        ip: IpAddr,
        client: &Client,
    ) -> Result<(), AuthError> {
        if counted.is_err() {
            self.record_trip(limit, &ip.to_string(), None, client).await;
        }
        counted
    }
}
