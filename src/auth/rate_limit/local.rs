//! The budgets in this process, on governor: what `RATE_LIMIT_STORE=memory` uses, and
//! what `redis` falls back to while Redis does not answer (`RATE_LIMIT_REDIS_FAILURE=open`).

use std::net::IpAddr;
use std::sync::Arc;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use super::{Bucket, Limit, Refusal};

type Limiter<K> = Option<Arc<DefaultKeyedRateLimiter<K>>>;

/// One keyed limiter per budget; a budget that is off has none.
#[derive(Clone)]
pub(super) struct Local {
    login_ip: Limiter<IpAddr>,
    login_account: Limiter<String>,
    register_ip: Limiter<IpAddr>,
    mail_address: Limiter<String>,
    mail_ip: Limiter<IpAddr>,
    mfa_account: Limiter<String>,
}

impl Local {
    /// `quota(limit)` is the limit's quota, `None` when it is off.
    pub(super) fn new(quota: impl Fn(Limit) -> Option<Quota>) -> Self {
        fn limiter<K: std::hash::Hash + Eq + Clone>(quota: Option<Quota>) -> Limiter<K> {
            quota.map(|q| Arc::new(DefaultKeyedRateLimiter::keyed(q)))
        }
        Self {
            login_ip: limiter(quota(Limit::LoginIp)),
            login_account: limiter(quota(Limit::LoginAccount)),
            register_ip: limiter(quota(Limit::RegisterIp)),
            mail_address: limiter(quota(Limit::MailAddress)),
            mail_ip: limiter(quota(Limit::MailIp)),
            mfa_account: limiter(quota(Limit::MfaAccount)),
        }
    }

    /// Spends one unit of each budget in turn; the first that refuses ends the turn (the
    /// ones before it stay spent, as in Redis).
    pub(super) fn spend(&self, checks: &[(Limit, Bucket<'_>)]) -> Result<(), Refusal> {
        for &(limit, bucket) in checks {
            let refused = match (limit, bucket) {
                (Limit::LoginIp, Bucket::Ip(ip)) => check(&self.login_ip, &ip),
                (Limit::RegisterIp, Bucket::Ip(ip)) => check(&self.register_ip, &ip),
                (Limit::MailIp, Bucket::Ip(ip)) => check(&self.mail_ip, &ip),
                (Limit::LoginAccount, Bucket::Text(t)) => check(&self.login_account, &t.to_owned()),
                (Limit::MailAddress, Bucket::Text(t)) => check(&self.mail_address, &t.to_owned()),
                (Limit::MfaAccount, Bucket::Text(t)) => check(&self.mfa_account, &t.to_owned()),
                // The callers in `super` pair each limit with its kind of bucket.
                _ => None,
            };
            if let Some(wait) = refused {
                return Err(Refusal { limit, wait });
            }
        }
        Ok(())
    }

    /// Forgets keys whose budget is full again; called periodically to bound memory.
    pub(super) fn forget_idle(&self) {
        fn sweep<K: std::hash::Hash + Eq + Clone>(l: &Limiter<K>) {
            if let Some(l) = l {
                l.retain_recent();
                l.shrink_to_fit();
            }
        }
        sweep(&self.login_ip);
        sweep(&self.login_account);
        sweep(&self.register_ip);
        sweep(&self.mail_address);
        sweep(&self.mail_ip);
        sweep(&self.mfa_account);
    }
}

/// Spends one unit of `key`'s budget; the wait until the next unit when refused.
fn check<K: std::hash::Hash + Eq + Clone>(
    limiter: &Limiter<K>,
    key: &K,
) -> Option<std::time::Duration> {
    let limiter = limiter.as_ref()?;
    limiter
        .check_key(key)
        .err()
        .map(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
}
