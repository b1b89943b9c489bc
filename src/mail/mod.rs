//! Mail: one [`Mailer`] with a backend chosen at start-up, and the [`Mail`] it sends.
//!
//! The flows never send directly: they write a [`Mail`] to the outbox in the transaction of
//! the change it announces (`crate::store::Outbox`), and the worker in `crate::jobs`
//! hands it to the [`Mailer`]. Logs name only the recipient's domain.

mod message;
mod templates;

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::config::MailSettings;

pub use message::build_message;
pub use templates::{MailContext, MailKind, TemplateError, Templates, link};

/// One mail, as the outbox stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mail {
    /// The recipient's address.
    pub to: String,
    pub subject: String,
    pub text: String,
    /// An HTML alternative to `text`, if any.
    pub html: Option<String>,
}

impl Mail {
    /// The part of the address after its last `@`: all that logs may name.
    pub fn recipient_domain(&self) -> &str {
        domain_of(&self.to)
    }
}

/// The part of `address` after its last `@`.
pub fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map_or("", |(_, domain)| domain)
}

/// Where mail goes.
#[derive(Clone)]
pub enum Backend {
    /// A mail server, through lettre (a pool of connections, TLS by rustls).
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// Development without `SMTP_URL`: each mail is logged, link and all, and not sent.
    Log,
}

/// Sends mail from the configured sender through the configured backend.
#[derive(Clone)]
pub struct Mailer {
    from: Mailbox,
    backend: Backend,
}

/// Why a mail was not sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Sending it again will fail again (a refused address, a malformed message).
    #[error("permanent: {0}")]
    Permanent(String),
    /// Worth another try later (the server is down, busy, or answered 4xx).
    #[error("transient: {0}")]
    Transient(String),
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match self.backend {
            Backend::Smtp(_) => "smtp",
            Backend::Log => "log",
        };
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .field("backend", &backend)
            .finish()
    }
}

impl Mailer {
    /// SMTP when `SMTP_URL` is set, the log otherwise (configuration refuses that in
    /// production). Connects lazily: a mail server that is down delays mail, not the start.
    pub fn new(settings: &MailSettings) -> Result<Self, lettre::transport::smtp::Error> {
        let backend = match &settings.smtp_url {
            Some(url) => Backend::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())?
                    .timeout(Some(SMTP_TIMEOUT))
                    .build(),
            ),
            None => Backend::Log,
        };
        Ok(Self {
            from: settings.from.clone(),
            backend,
        })
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Sends `mail`, or says whether trying again could help.
    pub async fn send(&self, mail: &Mail) -> Result<(), SendError> {
        let message = build_message(&self.from, mail)?;
        match &self.backend {
            Backend::Smtp(transport) => {
                transport.send(message).await.map_err(|e| {
                    // Connection and TLS failures are neither: they are transient.
                    if e.is_permanent() {
                        SendError::Permanent(e.to_string())
                    } else {
                        SendError::Transient(e.to_string())
                    }
                })?;
            }
            Backend::Log => tracing::info!(
                to_domain = mail.recipient_domain(),
                subject = %mail.subject,
                body = %mail.text,
                "mail not sent (no SMTP_URL): logged instead"
            ),
        }
        Ok(())
    }
}

/// How long one SMTP command may take before the attempt counts as failed.
const SMTP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
