//! The mail section: where mail is sent through (`SMTP_URL`), who it is from
//! (`MAIL_FROM`), the front-end its links point at (`APP_URL`) and the operator's
//! templates (`MAIL_TEMPLATES_DIR`).

use std::path::PathBuf;

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::parse::Lookup;
use super::{ConfigError, Environment};

const DEFAULT_FROM: &str = "auth-server <noreply@localhost>";
const DEFAULT_APP_URL: &str = "http://localhost:3000";

#[derive(Clone, Debug)]
pub struct MailSettings {
    /// lettre's connection URL: `smtp://host:port` (plain, for a local relay),
    /// `smtp://…?tls=required` (STARTTLS), `smtps://…` (implicit TLS); credentials as
    /// `user:password@`. A secret, since it may carry them. `None`: mails go to the log
    /// (development only).
    pub smtp_url: Option<SecretString>,
    /// The sender of every mail.
    pub from: Mailbox,
    /// The front-end that mail links point at (`http` or `https`).
    pub app_url: Url,
    /// Where an operator's templates override the built-in ones (`crate::mail::Templates`).
    pub templates_dir: Option<PathBuf>,
}

impl MailSettings {
    /// Production refuses to start without `SMTP_URL`: mails that only reach a log would
    /// be lost without anyone noticing.
    pub(super) fn read(
        get: &impl Lookup,
        environment: Environment,
        warnings: &mut Vec<String>,
    ) -> Result<Self, ConfigError> {
        let production = environment == Environment::Production;
        let smtp_url = get("SMTP_URL").map(SecretString::from);
        match &smtp_url {
            Some(url) => check_smtp_url(url)?,
            None if production => {
                return Err(ConfigError::new(
                    "SMTP_URL",
                    "is required when APP_ENV=production (mail would otherwise only be logged); \
                     e.g. smtps://user:password@smtp.example.com",
                ));
            }
            None => {}
        }
        let from_raw = get("MAIL_FROM");
        let app_url_raw = get("APP_URL");
        if production && from_raw.is_none() {
            warnings.push(format!(
                "MAIL_FROM is not set; mail is sent from {DEFAULT_FROM}"
            ));
        }
        if production && app_url_raw.is_none() {
            warnings.push(format!(
                "APP_URL is not set; mail links point at {DEFAULT_APP_URL}"
            ));
        }
        let from_raw = from_raw.unwrap_or_else(|| DEFAULT_FROM.to_owned());
        let from = from_raw.parse::<Mailbox>().map_err(|e| {
            ConfigError::new(
                "MAIL_FROM",
                format!("{from_raw:?}: {e} (expected name@domain or \"Name <name@domain>\")"),
            )
        })?;
        if from
            .name
            .as_deref()
            .is_some_and(|n| n.chars().any(char::is_control))
        {
            return Err(ConfigError::new(
                "MAIL_FROM",
                "the display name must be one line of printable characters",
            ));
        }
        let app_url = parse_app_url(&app_url_raw.unwrap_or_else(|| DEFAULT_APP_URL.to_owned()))?;
        Ok(Self {
            smtp_url,
            from,
            app_url,
            templates_dir: get("MAIL_TEMPLATES_DIR").map(PathBuf::from),
        })
    }
}

/// Lets lettre read the URL now, so a typo stops the start rather than the first mail.
/// The message never quotes the URL: it may hold a password.
fn check_smtp_url(url: &SecretString) -> Result<(), ConfigError> {
    AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
        .map(drop)
        .map_err(|e| {
            ConfigError::new(
                "SMTP_URL",
                format!(
                    "{e} (expected smtp://host:port, smtp://user:password@host?tls=required or \
                     smtps://user:password@host)"
                ),
            )
        })
}

fn parse_app_url(raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw).map_err(|e| ConfigError::new("APP_URL", format!("{raw:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ConfigError::new(
            "APP_URL",
            format!("{raw:?}: expected an http:// or https:// URL with a host"),
        ));
    }
    Ok(url)
}
