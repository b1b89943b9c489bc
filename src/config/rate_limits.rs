//! The rate-limits section: attempts per minute for the flows that guess passwords or
//! create accounts.

use super::ConfigError;
use super::parse::{Lookup, parse};

/// Attempts per minute; `0` turns a limit off.
#[derive(Clone, Debug)]
pub struct RateLimitSettings {
    pub login_per_ip: u32,
    pub login_per_account: u32,
    pub register_per_ip: u32,
}

impl RateLimitSettings {
    pub(super) fn read(get: &impl Lookup) -> Result<Self, ConfigError> {
        Ok(Self {
            login_per_ip: parse(get, "RATE_LIMIT_LOGIN_PER_IP", 20u32)?,
            login_per_account: parse(get, "RATE_LIMIT_LOGIN_PER_ACCOUNT", 10u32)?,
            register_per_ip: parse(get, "RATE_LIMIT_REGISTER_PER_IP", 10u32)?,
        })
    }
}
