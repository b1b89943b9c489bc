//! The rate-limits section: attempts per minute for the flows that guess passwords or
//! create accounts, and mails per hour for the flows that send mail.

use super::ConfigError;
use super::parse::{Lookup, parse};

/// Attempts per minute, mails per hour; `0` turns a limit off.
#[derive(Clone, Debug)]
pub struct RateLimitSettings {
    pub login_per_ip: u32,
    pub login_per_account: u32,
    pub register_per_ip: u32,
    /// Mails per hour to one address, whether or not an account has it.
    pub mail_per_address: u32,
    /// Mails per hour asked for from one client IP.
    pub mail_per_ip: u32,
}

impl RateLimitSettings {
    pub(super) fn read(get: &impl Lookup) -> Result<Self, ConfigError> {
        Ok(Self {
            login_per_ip: parse(get, "RATE_LIMIT_LOGIN_PER_IP", 20u32)?,
            login_per_account: parse(get, "RATE_LIMIT_LOGIN_PER_ACCOUNT", 10u32)?,
            register_per_ip: parse(get, "RATE_LIMIT_REGISTER_PER_IP", 10u32)?,
            mail_per_address: parse(get, "RATE_LIMIT_MAIL_PER_ADDRESS", 5u32)?,
            mail_per_ip: parse(get, "RATE_LIMIT_MAIL_PER_IP", 30u32)?,
        })
    }
}
