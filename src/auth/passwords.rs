//! Password hashing and verification with bcrypt, on a bounded pool off the async runtime.
//!
//! At most `workers` hashes run at once on the pool's own threads; at most `queue` more
//! wait. Past that, callers are shed at once with `RATE_LIMITED` instead of queueing without
//! bound, so a login flood costs bounded memory and never stalls other requests. The pool's
//! threads run at a lower CPU priority (`PASSWORD_HASH_PRIORITY`, by default Linux's
//! `SCHED_IDLE`), so when bcrypt saturates every core the threads that serve other requests
//! still get the CPU the moment they need it: a waking request preempts a hashing thread at
//! once, where with nice +10 it could wait for the end of its time slice (`me` p99 under a
//! login flood was 2.7 times its p99 without at nice +10, 0.7-1.5 times with `SCHED_IDLE`).
//!
//! The jobs waiting for a thread are the `auth_password_hash_queue_depth` gauge, and the
//! time each waited the `auth_password_hash_wait_seconds` histogram (`crate::metrics`).

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Instant;

use metrics::{Gauge, Histogram};

use tokio::sync::{OnceCell, Semaphore, oneshot};

use crate::config::{HashPriority, PasswordSettings};
use crate::domain::{MAX_PASSWORD_BYTES, Password};
use crate::error::AuthError;

/// Seconds a shed caller is told to wait.
const OVERLOAD_RETRY_AFTER: u64 = 1;

/// The `password_hash` of an account opened with a passkey and no password: not a bcrypt
/// hash, so no password matches it. A password reset sets a real one.
pub const NO_PASSWORD: &str = "!";

#[derive(Clone)]
pub struct PasswordHasher {
    cost: u32,
    /// Running plus waiting jobs.
    admission: Arc<Semaphore>,
    /// Running jobs.
    workers: Arc<Semaphore>,
    /// A hash of a random password at the configured cost, verified against when the
    /// account does not exist, so that case costs the same work as a wrong password.
    dummy: Arc<OnceCell<String>>,
    /// The hashing threads; `None` if none could be started (then tokio's blocking pool).
    pool: Option<mpsc::Sender<Job>>,
    /// Jobs admitted and waiting for a worker.
    queue_depth: Gauge,
    /// Seconds each job waited for a worker.
    wait: Histogram,
}

/// A job waiting for a worker: counted in the queue until dropped, when its wait is
/// recorded (also when the caller gave up waiting).
struct Waiting<'a> {
    hasher: &'a PasswordHasher,
    since: Instant,
}

impl<'a> Waiting<'a> {
    fn start(hasher: &'a PasswordHasher) -> Self {
        hasher.queue_depth.increment(1.0);
        Self {
            hasher,
            since: Instant::now(),
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.hasher.queue_depth.decrement(1.0);
        self.hasher.wait.record(self.since.elapsed().as_secs_f64());
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// The nice level of [`HashPriority::Low`].
const LOW_NICE: i32 = 10;

/// Starts `workers` threads that run jobs until every sender is gone.
fn spawn_pool(workers: usize, priority: HashPriority) -> Option<mpsc::Sender<Job>> {
    let (sender, receiver) = mpsc::channel::<Job>();
    let receiver = Arc::new(Mutex::new(receiver));
    let mut started = 0;
    for i in 0..workers {
        let receiver = receiver.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("password-hash-{i}"))
            .spawn(move || {
                set_priority(priority);
                loop {
                    let job = {
                        let Ok(guard) = receiver.lock() else { return };
                        guard.recv()
                    };
                    let Ok(job) = job else { return };
                    // A panicking job drops its reply channel; the caller sees an error.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                }
            });
        if spawned.is_ok() {
            started += 1;
        }
    }
    (started > 0).then_some(sender)
}

/// Sets the calling thread's CPU priority (on Linux both are per thread). A refusal leaves
/// the thread at normal priority, which is correct, only less kind to other requests.
fn set_priority(priority: HashPriority) {
    #[cfg(target_os = "linux")]
    match priority {
        HashPriority::Idle => {
            let param = libc::sched_param { sched_priority: 0 };
            // SAFETY: sched_setscheduler(0, ..) only changes the calling thread's policy,
            // and `param` outlives the call.
            if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } != 0 {
                tracing::warn!("could not set SCHED_IDLE on a password-hashing thread");
            }
        }
        // SAFETY: nice(2) only changes the scheduling priority of the calling thread.
        HashPriority::Low => unsafe {
            libc::nice(LOW_NICE);
        },
        HashPriority::Normal => {}
    }
    #[cfg(not(target_os = "linux"))]
    let _ = priority;
}

impl PasswordHasher {
    /// Its metrics go to the recorder installed when it is built (none: not recorded).
    pub fn new(settings: &PasswordSettings) -> Self {
        Self {
            queue_depth: metrics::gauge!(crate::metrics::HASH_QUEUE_DEPTH),
            wait: metrics::histogram!(crate::metrics::HASH_WAIT),
            cost: settings.bcrypt_cost,
            admission: Arc::new(Semaphore::new(settings.hash_workers + settings.hash_queue)),
            workers: Arc::new(Semaphore::new(settings.hash_workers)),
            dummy: Arc::new(OnceCell::new()),
            pool: spawn_pool(settings.hash_workers, settings.hash_priority),
        }
    }

    /// Hashes a new password. `Password` is at most 72 bytes, so nothing is cut (bcrypt's
    /// `non_truncating_hash` would refuse exactly 72 bytes: it counts the NUL terminator).
    pub async fn hash(&self, password: &Password) -> Result<String, AuthError> {
        let password = password.expose().to_owned();
        let cost = self.cost;
        self.run(move || bcrypt::hash(password, cost))
            .await?
            .map_err(AuthError::internal)
    }

    /// True only if `candidate` is the password of `hash`. An account without a password
    /// ([`NO_PASSWORD`], opened with a passkey) costs the same work and is never matched. With `hash` absent (unknown
    /// account) or a candidate bcrypt cannot represent, the same work is done and the
    /// answer is false.
    pub async fn verify(&self, candidate: &str, hash: Option<&str>) -> Result<bool, AuthError> {
        let hash = hash.filter(|h| *h != NO_PASSWORD);
        let target = match hash {
            Some(h) => h.to_owned(),
            None => self.dummy_hash().await?,
        };
        let representable = candidate.len() <= MAX_PASSWORD_BYTES && !candidate.contains('\0');
        // Cut to 72 bytes so over-long input costs exactly one normal verification.
        let bytes = candidate.as_bytes()[..candidate.len().min(MAX_PASSWORD_BYTES)].to_vec();
        let matched = self
            .run(move || bcrypt::verify(bytes, &target))
            .await?
            .map_err(AuthError::internal)?;
        Ok(matched && representable && hash.is_some())
    }

    /// The rehash policy: whether `stored`, which a login has just verified, should be
    /// replaced by a fresh hash of the same password. True for anything new hashes would
    /// not be: another bcrypt version or cost, or (later) another algorithm. An outdated
    /// hash both weakens the account and verifies in another time than the dummy hash of
    /// unknown accounts, which tells an enumerator the account exists.
    pub fn needs_rehash(&self, stored: &str) -> bool {
        match stored.parse::<bcrypt::HashParts>() {
            Ok(parts) => parts.get_cost() != self.cost || !stored.starts_with("$2b$"),
            Err(_) => true,
        }
    }

    /// A fresh hash, at the configured cost, of a password a login has just verified
    /// (so it is representable; it need not meet today's password policy).
    pub async fn rehash(&self, verified: &str) -> Result<String, AuthError> {
        if verified.len() > MAX_PASSWORD_BYTES || verified.contains('\0') {
            return Err(AuthError::internal_msg(
                "cannot rehash an unrepresentable password",
            ));
        }
        let password = verified.to_owned();
        let cost = self.cost;
        self.run(move || bcrypt::hash(password, cost))
            .await?
            .map_err(AuthError::internal)
    }

    /// Computes the dummy hash ahead of the first unknown-account login.
    pub async fn warm_up(&self) -> Result<(), AuthError> {
        self.dummy_hash().await.map(|_| ())
    }

    async fn dummy_hash(&self) -> Result<String, AuthError> {
        let cost = self.cost;
        self.dummy
            .get_or_try_init(|| async move {
                let random = uuid::Uuid::new_v4().to_string();
                self.run(move || bcrypt::hash(random, cost))
                    .await?
                    .map_err(AuthError::internal)
            })
            .await
            .cloned()
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        let admitted =
            self.admission
                .clone()
                .try_acquire_owned()
                .map_err(|_| AuthError::RateLimited {
                    retry_after: OVERLOAD_RETRY_AFTER,
                })?;
        let waiting = Waiting::start(self);
        let worker = self
            .workers
            .clone()
            .acquire_owned()
            .await
            .map_err(AuthError::internal)?;
        drop(waiting);
        let Some(pool) = &self.pool else {
            return tokio::task::spawn_blocking(move || {
                // Held until the hash is done, even if the request that asked has gone.
                let _permits = (admitted, worker);
                job()
            })
            .await
            .map_err(AuthError::internal);
        };
        let (reply, result) = oneshot::channel();
        pool.send(Box::new(move || {
            // Held until the hash is done, even if the request that asked has gone, and
            // released before the caller hears back, so it may hash again at once.
            let permits = (admitted, worker);
            let result = job();
            drop(permits);
            let _ = reply.send(result);
        }))
        .map_err(|_| AuthError::internal_msg("the password hashing threads are gone"))?;
        result.await.map_err(AuthError::internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher(workers: usize, queue: usize) -> PasswordHasher {
        with_priority(workers, queue, HashPriority::Idle)
    }

    fn with_priority(workers: usize, queue: usize, priority: HashPriority) -> PasswordHasher {
        PasswordHasher::new(&PasswordSettings {
            bcrypt_cost: 4,
            hash_workers: workers,
            hash_queue: queue,
            hash_priority: priority,
        })
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_threads_run_at_the_configured_priority() {
        // SAFETY: both calls only read the calling thread's scheduling state.
        let policy_and_nice = || unsafe {
            (
                libc::sched_getscheduler(0),
                libc::getpriority(libc::PRIO_PROCESS, 0),
            )
        };
        let (policy, _) = hasher(1, 0).run(policy_and_nice).await.unwrap();
        assert_eq!(policy, libc::SCHED_IDLE);
        let base = policy_and_nice().1;
        let low = with_priority(1, 0, HashPriority::Low);
        assert_eq!(
            low.run(policy_and_nice).await.unwrap(),
            (libc::SCHED_OTHER, (base + LOW_NICE).min(19))
        );
        let normal = with_priority(1, 0, HashPriority::Normal);
        assert_eq!(
            normal.run(policy_and_nice).await.unwrap(),
            (libc::SCHED_OTHER, base)
        );
    }

    async fn hashed(h: &PasswordHasher, password: &str) -> String {
        h.hash(&Password::parse(password).unwrap()).await.unwrap()
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_nothing_else() {
        let h = hasher(2, 4);
        let hash = hashed(&h, "correct horse").await;
        assert!(h.verify("correct horse", Some(&hash)).await.unwrap());
        assert!(!h.verify("correct hors", Some(&hash)).await.unwrap());
        assert!(!h.verify("correct horse", None).await.unwrap());
    }

    #[tokio::test]
    async fn a_candidate_over_72_bytes_never_matches_even_with_the_right_prefix() {
        let h = hasher(2, 4);
        let pw = "p".repeat(72);
        let hash = hashed(&h, &pw).await;
        assert!(h.verify(&pw, Some(&hash)).await.unwrap());
        assert!(!h.verify(&format!("{pw}x"), Some(&hash)).await.unwrap());
    }

    #[tokio::test]
    async fn only_hashes_of_another_cost_version_or_algorithm_need_a_rehash() {
        let h = hasher(1, 4);
        let current = hashed(&h, "correct horse").await;
        assert!(!h.needs_rehash(&current));
        let cheaper = bcrypt::hash("correct horse", 5).unwrap();
        assert!(h.needs_rehash(&cheaper));
        let older_version = current.replacen("$2b$", "$2a$", 1);
        assert!(h.needs_rehash(&older_version));
        assert!(h.needs_rehash("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"));
        let fresh = h.rehash("correct horse").await.unwrap();
        assert!(!h.needs_rehash(&fresh));
        assert!(h.verify("correct horse", Some(&fresh)).await.unwrap());
    }

    #[tokio::test]
    async fn past_the_queue_callers_are_shed_with_rate_limited() {
        let h = hasher(1, 0);
        let hash = bcrypt::hash("whatever-password", 4).unwrap();
        // Occupy the only slot with a slow job, then ask for another.
        let busy = h.clone();
        let blocker = tokio::spawn(async move {
            busy.run(|| std::thread::sleep(std::time::Duration::from_millis(300)))
                .await
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let err = h
            .verify("whatever-password", Some(&hash))
            .await
            .unwrap_err();
        assert!(matches!(err, AuthError::RateLimited { .. }));
        blocker.await.unwrap().unwrap();
        assert!(h.verify("whatever-password", Some(&hash)).await.unwrap());
    }
}
