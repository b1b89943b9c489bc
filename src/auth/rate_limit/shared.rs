//! The budgets in Redis, shared by every instance (`RATE_LIMIT_STORE=redis`).
//!
//! Each decision is one Lua script, run atomically by Redis: GCRA, the algorithm governor
//! uses, with the same quotas. A budget of `n` per `period` has an emission interval
//! `T = period / n` and a burst of `n`. A key holds its theoretical arrival time (TAT), in
//! microseconds of Redis's own clock (`TIME`), so instances whose clocks differ still
//! agree. A request at `now` is admitted when `max(TAT, now) + T - now <= n * T`, and then
//! moves the TAT to `max(TAT, now) + T`. The key expires when its budget is full again,
//! so Redis holds only keys that are being spent.
//!
//! One script checks every budget of a request in order (mail checks the client IP's and
//! the address's), and stops at the first that refuses: the ones before it stay spent, as
//! in this process.
//!
//! Keys are `{REDIS_KEY_PREFIX}:rl:{limit}:{bucket}`. An IP bucket is the address (an
//! IPv6 /64's first address); an account or a mail address is a SHA-256 (first 128 bits,
//! hex), so Redis holds no addresses and the key length is bounded.
//!
//! Every call is bounded by `REDIS_TIMEOUT`. After a failure Redis is left alone for
//! [`REST_AFTER_FAILURE`], during which decisions go to the fallback at once (a Redis that
//! hangs costs one timeout per rest, not one per request); then the next request tries
//! again, so the shared budgets resume without a restart.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use deadpool_redis::{Manager, Pool};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use super::{Bucket, Limit, Refusal};
use crate::config::RedisSettings;

/// How long Redis is left alone after a failed call.
pub(super) const REST_AFTER_FAILURE: Duration = Duration::from_secs(1);
/// Connections to Redis; each is multiplexed, so this bounds sockets, not requests.
const POOL_SIZE: usize = 8;

/// KEYS: one per budget, in order. ARGV: for each key, its emission interval (µs) and its
/// burst. Returns `{0, 0}` when every budget admitted the request, else `{i, wait}`: the
/// 1-based index of the budget that refused, and the microseconds until it admits one more.
const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local after = tat + interval
  local wait = after - now - interval * burst
  if wait > 0 then
    return {i, wait}
  end
  redis.call('SET', key, string.format('%.0f', after), 'PX', math.ceil((after - now) / 1000))
end
return {0, 0}
";

/// What Redis said about a request.
pub(super) enum Verdict {
    Admitted,
    Refused(Refusal),
    /// Redis did not answer (or is resting after a failure): the caller's fallback decides.
    Unavailable,
}

pub(super) struct Shared {
    /// `None` only if the URL that the settings checked could not make a client (the
    /// limiter then behaves as if Redis never answered).
    pool: Option<Pool>,
    script: redis::Script,
    prefix: String,
    timeout: Duration,
    /// Until when Redis is left alone, in microseconds since `epoch`; 0 when it answers.
    resting_until: AtomicU64,
    epoch: Instant,
    /// Whether the last call failed, so the change is logged once each way.
    down: AtomicBool,
}

impl Shared {
    pub(super) fn new(settings: &RedisSettings) -> Self {
        let pool = Manager::new(settings.url.expose_secret())
            .map_err(|e| e.category().to_owned())
            .and_then(|manager| {
                Pool::builder(manager)
                    .max_size(POOL_SIZE)
                    .runtime(deadpool_redis::Runtime::Tokio1)
                    .build()
                    .map_err(|e| e.to_string())
            });
        let pool = match pool {
            Ok(pool) => Some(pool),
            Err(e) => {
                tracing::error!(error = %e, "REDIS_URL: no Redis client could be made; rate limits fall back as if Redis were down");
                None
            }
        };
        Self {
            pool,
            script: redis::Script::new(SCRIPT),
            prefix: settings.key_prefix.clone(),
            timeout: settings.timeout,
            resting_until: AtomicU64::new(0),
            epoch: Instant::now(),
            down: AtomicBool::new(false),
        }
    }

    /// Spends one unit of each budget in `checks` (each with its quota) in Redis.
    pub(super) async fn spend(&self, checks: &[(Limit, Bucket<'_>, Gcra)]) -> Verdict {
        let now = self.micros_since_epoch();
        if now < self.resting_until.load(Ordering::Relaxed) {
            return Verdict::Unavailable;
        }
        let Some(pool) = &self.pool else {
            return Verdict::Unavailable;
        };
        let mut call = self.script.prepare_invoke();
        for (limit, bucket, gcra) in checks {
            call.key(self.key(*limit, *bucket))
                .arg(gcra.interval_micros)
                .arg(gcra.burst);
        }
        let answer = tokio::time::timeout(self.timeout, async {
            let mut conn = pool.get().await.map_err(|e| e.to_string())?;
            call.invoke_async::<(u32, u64)>(&mut conn)
                .await
                .map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {:?}", self.timeout)));
        match answer {
            Ok((refused_at, wait_micros)) => {
                if self.down.swap(false, Ordering::Relaxed) {
                    tracing::info!("Redis answers again: the shared rate limits apply");
                }
                metrics::gauge!("auth_rate_limit_store_up").set(1.0);
                let refused = (refused_at as usize)
                    .checked_sub(1)
                    .and_then(|i| checks.get(i));
                match refused {
                    None => Verdict::Admitted,
                    Some((limit, _, _)) => Verdict::Refused(Refusal {
                        limit: *limit,
                        wait: Duration::from_micros(wait_micros),
                    }),
                }
            }
            Err(error) => {
                metrics::counter!("auth_rate_limit_store_errors_total").increment(1);
                metrics::gauge!("auth_rate_limit_store_up").set(0.0);
                let rest = u64::try_from(REST_AFTER_FAILURE.as_micros()).unwrap_or(u64::MAX);
                self.resting_until
                    .store(now.saturating_add(rest), Ordering::Relaxed);
                if !self.down.swap(true, Ordering::Relaxed) {
                    tracing::warn!(%error, "Redis does not answer: rate limits fall back (RATE_LIMIT_REDIS_FAILURE) until it does");
                } else {
                    tracing::debug!(%error, "Redis still does not answer");
                }
                Verdict::Unavailable
            }
        }
    }

    fn micros_since_epoch(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn key(&self, limit: Limit, bucket: Bucket<'_>) -> String {
        let prefix = &self.prefix;
        let limit = limit.name();
        match bucket {
            Bucket::Ip(ip) => format!("{prefix}:rl:{limit}:{ip}"),
            Bucket::Text(text) => {
                let digest = Sha256::digest(text.as_bytes());
                let hex = crate::hex::lower(&digest[..16]);
                format!("{prefix}:rl:{limit}:{hex}")
            }
        }
    }
}

/// A budget's quota in GCRA terms.
#[derive(Clone, Copy, Debug)]
pub(super) struct Gcra {
    pub interval_micros: u64,
    pub burst: u32,
}

impl Gcra {
    /// `n` units per `period`.
    pub(super) fn new(n: std::num::NonZeroU32, period: Duration) -> Self {
        let period = u64::try_from(period.as_micros()).unwrap_or(u64::MAX);
        Self {
            interval_micros: (period / u64::from(n.get())).max(1),
            burst: n.get(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_of_n_per_period_emits_one_unit_every_period_over_n() {
        let g = Gcra::new(
            std::num::NonZeroU32::new(20).unwrap(),
            Duration::from_secs(60),
        );
        assert_eq!(g.interval_micros, 3_000_000);
        assert_eq!(g.burst, 20);
    }

    #[test]
    fn keys_hold_no_address_and_are_bounded() {
        let shared = Shared::new(&RedisSettings {
            url: "redis://127.0.0.1:1".to_owned().into(),
            timeout: Duration::from_millis(10),
            key_prefix: "p".to_owned(),
            on_failure: crate::config::RedisFailure::Open,
        });
        let long = format!("{}@example.com", "a".repeat(300));
        let key = shared.key(Limit::MailAddress, Bucket::Text(&long));
        assert!(key.starts_with("p:rl:mail_address:"), "{key}");
        assert!(!key.contains("example"), "{key}");
        assert_eq!(key.len(), "p:rl:mail_address:".len() + 32);
        let ip = shared.key(Limit::LoginIp, Bucket::Ip("192.0.2.1".parse().unwrap()));
        assert_eq!(ip, "p:rl:login_ip:192.0.2.1");
    }
}
