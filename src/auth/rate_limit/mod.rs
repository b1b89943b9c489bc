//! Attempt budgets: login per client IP and per account, register per client IP, mails
//! per recipient address and per client IP, and second-factor codes per account.
//!
//! Counted in this process by governor (`RATE_LIMIT_STORE=memory`, [`local`]), or in Redis,
//! shared by every instance, with the same quotas and the same algorithm (GCRA) (`redis`,
//! [`shared`]). While Redis does not answer, `RATE_LIMIT_REDIS_FAILURE` decides: `open`
//! counts in this process (each instance with budgets of its own, full when the fallback
//! starts), `closed` refuses every rate-limited operation with `RATE_LIMITED`.

mod local;
mod shared;

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::Quota;

use crate::config::{LimitStore, RateLimitSettings, RedisFailure};
use crate::error::AuthError;

use shared::{Gcra, Shared, Verdict};

/// The budgets, by the name the metrics and security events give them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Limit {
    LoginIp,
    LoginAccount,
    RegisterIp,
    MailAddress,
    MailIp,
    MfaAccount,
}

impl Limit {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Limit::LoginIp => "login_ip",
            Limit::LoginAccount => "login_account",
            Limit::RegisterIp => "register_ip",
            Limit::MailAddress => "mail_address",
            Limit::MailIp => "mail_ip",
            Limit::MfaAccount => "mfa_account",
        }
    }
}

/// What a budget is kept for: a client address, or a text (an account, a mail address).
#[derive(Clone, Copy, Debug)]
pub(super) enum Bucket<'a> {
    Ip(IpAddr),
    Text(&'a str),
}

/// A budget that refused, and the wait until it admits one more.
#[derive(Clone, Copy, Debug)]
pub(super) struct Refusal {
    limit: Limit,
    wait: Duration,
}

/// The budgets and where they are counted; a limit of `0` is off.
#[derive(Clone)]
pub struct RateLimits {
    quotas: Quotas,
    local: local::Local,
    shared: Option<Arc<Shared>>,
    on_failure: RedisFailure,
}

/// Each limit's budget: `n` per period, `None` when off.
#[derive(Clone, Copy)]
struct Quotas {
    login_ip: Option<NonZeroU32>,
    login_account: Option<NonZeroU32>,
    register_ip: Option<NonZeroU32>,
    mail_address: Option<NonZeroU32>,
    mail_ip: Option<NonZeroU32>,
    mfa_account: Option<NonZeroU32>,
}

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

impl Quotas {
    /// `n` per `period`, or `None` when the limit is off.
    fn of(&self, limit: Limit) -> Option<(NonZeroU32, Duration)> {
        match limit {
            Limit::LoginIp => self.login_ip.map(|n| (n, MINUTE)),
            Limit::LoginAccount => self.login_account.map(|n| (n, MINUTE)),
            Limit::RegisterIp => self.register_ip.map(|n| (n, MINUTE)),
            Limit::MailAddress => self.mail_address.map(|n| (n, HOUR)),
            Limit::MailIp => self.mail_ip.map(|n| (n, HOUR)),
            Limit::MfaAccount => self.mfa_account.map(|n| (n, MINUTE)),
        }
    }
}

impl RateLimits {
    pub fn new(settings: &RateLimitSettings) -> Self {
        let quotas = Quotas {
            login_ip: NonZeroU32::new(settings.login_per_ip),
            login_account: NonZeroU32::new(settings.login_per_account),
            register_ip: NonZeroU32::new(settings.register_per_ip),
            mail_address: NonZeroU32::new(settings.mail_per_address),
            mail_ip: NonZeroU32::new(settings.mail_per_ip),
            mfa_account: NonZeroU32::new(settings.mfa_per_account),
        };
        let local = local::Local::new(|limit| {
            quotas.of(limit).map(|(n, period)| {
                if period == HOUR {
                    Quota::per_hour(n)
                } else {
                    Quota::per_minute(n)
                }
            })
        });
        let (shared, on_failure) = match &settings.store {
            LimitStore::Memory => (None, RedisFailure::Open),
            LimitStore::Redis(redis) => (Some(Arc::new(Shared::new(redis))), redis.on_failure),
        };
        Self {
            quotas,
            local,
            shared,
            on_failure,
        }
    }

    /// Counts one login attempt from `ip`.
    pub async fn login_from(&self, ip: IpAddr) -> Result<(), AuthError> {
        self.spend(&[(Limit::LoginIp, Bucket::Ip(bucket_of(ip)))])
            .await
    }

    /// Counts one login attempt against `account` (a user id, or the unknown identifier).
    pub async fn login_as(&self, account: &str) -> Result<(), AuthError> {
        self.spend(&[(Limit::LoginAccount, Bucket::Text(account))])
            .await
    }

    /// Counts one second-factor code tried for `account` (a user id), right or wrong.
    pub async fn mfa_as(&self, account: &str) -> Result<(), AuthError> {
        self.spend(&[(Limit::MfaAccount, Bucket::Text(account))])
            .await
    }

    /// Counts one registration attempt from `ip`.
    pub async fn register_from(&self, ip: IpAddr) -> Result<(), AuthError> {
        self.spend(&[(Limit::RegisterIp, Bucket::Ip(bucket_of(ip)))])
            .await
    }

    /// Counts one mail asked for from `ip` to `address` (normalised, known or not): both
    /// budgets are checked, the address's only if the IP's allows it.
    pub async fn mail(&self, ip: IpAddr, address: &str) -> Result<(), AuthError> {
        self.spend(&[
            (Limit::MailIp, Bucket::Ip(bucket_of(ip))),
            (Limit::MailAddress, Bucket::Text(address)),
        ])
        .await
    }

    /// Forgets keys whose budget is full again in this process's limiters; called
    /// periodically to bound memory (Redis expires its own keys).
    pub fn forget_idle(&self) {
        self.local.forget_idle();
    }

    /// Spends one unit of each budget in `checks` that is on, in order.
    async fn spend(&self, checks: &[(Limit, Bucket<'_>)]) -> Result<(), AuthError> {
        let on: Vec<(Limit, Bucket<'_>, Gcra)> = checks
            .iter()
            .filter_map(|&(limit, bucket)| {
                let (n, period) = self.quotas.of(limit)?;
                Some((limit, bucket, Gcra::new(n, period)))
            })
            .collect();
        let Some(&(first, _, _)) = on.first() else {
            return Ok(());
        };
        let decided = match &self.shared {
            None => self.local.spend(checks),
            Some(shared) => match shared.spend(&on).await {
                Verdict::Admitted => Ok(()),
                Verdict::Refused(refusal) => Err(refusal),
                Verdict::Unavailable => match self.on_failure {
                    RedisFailure::Open => self.local.spend(checks),
                    RedisFailure::Closed => Err(Refusal {
                        limit: first,
                        wait: shared::REST_AFTER_FAILURE,
                    }),
                },
            },
        };
        decided.map_err(|Refusal { limit, wait }| {
            metrics::counter!("auth_rate_limited_total", "limit" => limit.name()).increment(1);
            AuthError::RateLimited {
                retry_after: wait.as_secs_f64().ceil().max(1.0) as u64,
            }
        })
    }
}

/// One bucket per IPv4 address, and per /64 for IPv6 (one host usually owns a whole /64).
fn bucket_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests;
