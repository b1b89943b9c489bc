//! The account-lifecycle section: whether login waits for a verified address
//! (`REQUIRE_EMAIL_VERIFICATION`), and how long the tokens that mails carry live
//! (`EMAIL_VERIFICATION_TTL`, `PASSWORD_RESET_TTL`), and how long security events are
//! kept (`SECURITY_EVENTS_RETENTION`).

use std::time::Duration;

use super::ConfigError;
use super::parse::{Lookup, boolean, nonzero_duration};

/// The longest a verification (or email-change) token may live.
pub const MAX_VERIFICATION_TTL: Duration = Duration::from_secs(24 * 3600);
/// The longest a password-reset token may live.
pub const MAX_RESET_TTL: Duration = Duration::from_secs(3600);

#[derive(Clone, Debug)]
pub struct AccountSettings {
    /// Login (and register) open no session until the address is verified.
    pub require_email_verification: bool,
    /// Lifetime of a verification or email-change token: at most 24 h.
    pub verification_ttl: Duration,
    /// Lifetime of a password-reset token: at most 1 h.
    pub reset_ttl: Duration,
    /// How long security events are kept before the purge job deletes them (90 days).
    pub security_events_retention: Duration,
}

impl AccountSettings {
    pub(super) fn read(get: &impl Lookup) -> Result<Self, ConfigError> {
        Ok(Self {
            require_email_verification: boolean(get, "REQUIRE_EMAIL_VERIFICATION", false)?,
            verification_ttl: capped(get, "EMAIL_VERIFICATION_TTL", "24h", MAX_VERIFICATION_TTL)?,
            reset_ttl: capped(get, "PASSWORD_RESET_TTL", "1h", MAX_RESET_TTL)?,
            security_events_retention: nonzero_duration(get, "SECURITY_EVENTS_RETENTION", "90d")?,
        })
    }
}

/// A lifetime of at least a second and at most `max`: a mailed token that lives long is a
/// standing credential in an inbox.
fn capped(
    get: &impl Lookup,
    var: &'static str,
    default: &str,
    max: Duration,
) -> Result<Duration, ConfigError> {
    let value = nonzero_duration(get, var, default)?;
    if value > max {
        return Err(ConfigError::new(
            var,
            format!(
                "is at most {} (a mailed token should not outlive the need for it)",
                humantime::format_duration(max)
            ),
        ));
    }
    Ok(value)
}
