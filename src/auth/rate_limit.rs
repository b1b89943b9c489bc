//! Attempt budgets (governor): login per client IP and per account, register per client IP,
//! and mails per recipient address and per client IP.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::config::RateLimitSettings;
use crate::error::AuthError;

type Limiter<K> = Option<Arc<DefaultKeyedRateLimiter<K>>>;

/// The keyed limiters; a limit of `0` means no limiter at all.
#[derive(Clone)]
pub struct RateLimits {
    login_ip: Limiter<IpAddr>,
    login_account: Limiter<String>,
    register_ip: Limiter<IpAddr>,
    mail_address: Limiter<String>,
    mail_ip: Limiter<IpAddr>,
}

impl RateLimits {
    pub fn new(settings: &RateLimitSettings) -> Self {
        fn limiter<K: std::hash::Hash + Eq + Clone>(
            n: u32,
            per: fn(NonZeroU32) -> Quota,
        ) -> Limiter<K> {
            NonZeroU32::new(n).map(|n| Arc::new(DefaultKeyedRateLimiter::keyed(per(n))))
        }
        Self {
            login_ip: limiter(settings.login_per_ip, Quota::per_minute),
            login_account: limiter(settings.login_per_account, Quota::per_minute),
            register_ip: limiter(settings.register_per_ip, Quota::per_minute),
            mail_address: limiter(settings.mail_per_address, Quota::per_hour),
            mail_ip: limiter(settings.mail_per_ip, Quota::per_hour),
        }
    }

    /// Counts one login attempt from `ip`.
    pub fn login_from(&self, ip: IpAddr) -> Result<(), AuthError> {
        check(&self.login_ip, &bucket_of(ip), "login_ip")
    }

    /// Counts one login attempt against `account` (a user id, or the unknown identifier).
    pub fn login_as(&self, account: &str) -> Result<(), AuthError> {
        check(&self.login_account, &account.to_owned(), "login_account")
    }

    /// Counts one registration attempt from `ip`.
    pub fn register_from(&self, ip: IpAddr) -> Result<(), AuthError> {
        check(&self.register_ip, &bucket_of(ip), "register_ip")
    }

    /// Counts one mail asked for from `ip` to `address` (normalised, known or not): both
    /// budgets are checked, the address's only if the IP's allows it.
    pub fn mail(&self, ip: IpAddr, address: &str) -> Result<(), AuthError> {
        check(&self.mail_ip, &bucket_of(ip), "mail_ip")?;
        check(&self.mail_address, &address.to_owned(), "mail_address")
    }

    /// Forgets keys whose budget is full again; call periodically to bound memory.
    pub fn forget_idle(&self) {
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
    }
}

/// Spends one unit of `key`'s budget in `limiter` (named `limit` in the metrics).
fn check<K: std::hash::Hash + Eq + Clone>(
    limiter: &Limiter<K>,
    key: &K,
    limit: &'static str,
) -> Result<(), AuthError> {
    let Some(limiter) = limiter else {
        return Ok(());
    };
    limiter.check_key(key).map_err(|not_until| {
        metrics::counter!("auth_rate_limited_total", "limit" => limit).increment(1);
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        AuthError::RateLimited {
            retry_after: wait.as_secs_f64().ceil().max(1.0) as u64,
        }
    })
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

// Each test keeps its own arrange-act-assert lines, even where two read alike: each states
// one rule and reads alone.
#[cfg(test)]
mod tests {
    use super::*;

    fn limits(login_ip: u32, login_account: u32, register_ip: u32) -> RateLimits {
        RateLimits::new(&RateLimitSettings {
            login_per_ip: login_ip,
            login_per_account: login_account,
            register_per_ip: register_ip,
            mail_per_address: 0,
            mail_per_ip: 0,
        })
    }

    #[test]
    fn the_budget_is_spent_then_refused_with_a_retry_time() {
        let l = limits(3, 0, 0);
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        for _ in 0..3 {
            l.login_from(ip).unwrap();
        }
        match l.login_from(ip) {
            Err(AuthError::RateLimited { retry_after }) => assert!((1..=20).contains(&retry_after)),
            other => panic!("expected RateLimited, got {other:?}"),
        }
        // Another address has its own budget.
        l.login_from("10.1.2.4".parse().unwrap()).unwrap();
    }

    #[test]
    fn zero_turns_a_limit_off() {
        let l = limits(0, 0, 0);
        for _ in 0..1000 {
            l.login_from("10.0.0.1".parse().unwrap()).unwrap();
            l.register_from("10.0.0.1".parse().unwrap()).unwrap();
            l.login_as("someone").unwrap();
        }
    }

    #[test]
    fn ipv6_addresses_in_one_slash_64_share_a_bucket() {
        let l = limits(1, 0, 0);
        l.login_from("2001:db8:1:2::1".parse().unwrap()).unwrap();
        assert!(
            l.login_from("2001:db8:1:2:ffff::9".parse().unwrap())
                .is_err()
        );
        l.login_from("2001:db8:1:3::1".parse().unwrap()).unwrap();
    }

    #[test]
    fn ipv4_mapped_addresses_count_as_ipv4() {
        let l = limits(0, 0, 1);
        l.register_from("192.0.2.7".parse().unwrap()).unwrap();
        assert!(
            l.register_from("::ffff:192.0.2.7".parse().unwrap())
                .is_err()
        );
    }

    #[test]
    fn mail_is_limited_per_address_and_per_ip() {
        let l = RateLimits::new(&RateLimitSettings {
            login_per_ip: 0,
            login_per_account: 0,
            register_per_ip: 0,
            mail_per_address: 2,
            mail_per_ip: 3,
        });
        let ip: IpAddr = "10.9.9.9".parse().unwrap();
        l.mail(ip, "a@example.com").unwrap();
        l.mail(ip, "a@example.com").unwrap();
        match l.mail("10.9.9.8".parse().unwrap(), "a@example.com") {
            // An hour's budget of 2 refills one mail every 30 minutes.
            Err(AuthError::RateLimited { retry_after }) => {
                assert!((1..=1800).contains(&retry_after), "{retry_after}")
            }
            other => panic!("expected RateLimited, got {other:?}"),
        }
        l.mail(ip, "b@example.com").unwrap();
        assert!(
            l.mail(ip, "c@example.com").is_err(),
            "the IP's budget of 3 is spent"
        );
    }

    #[test]
    fn accounts_are_limited_independently_of_addresses() {
        let l = limits(0, 2, 0);
        l.login_as("user-a").unwrap();
        l.login_as("user-a").unwrap();
        assert!(l.login_as("user-a").is_err());
        l.login_as("user-b").unwrap();
    }
}
