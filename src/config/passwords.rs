//! The passwords section: bcrypt's cost and the pool of threads that hash.

use super::ConfigError;
use super::parse::{Lookup, choice, parse, positive};

#[derive(Clone, Debug)]
pub struct PasswordSettings {
    pub bcrypt_cost: u32,
    /// Threads that hash and verify passwords at once.
    pub hash_workers: usize,
    /// Hash jobs allowed to wait for a worker; beyond it requests are shed.
    pub hash_queue: usize,
    /// CPU priority of the hashing threads against the threads that serve requests.
    pub hash_priority: HashPriority,
}

/// `PASSWORD_HASH_PRIORITY`: how the hashing threads are scheduled (Linux; elsewhere they
/// run at normal priority).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashPriority {
    /// `SCHED_IDLE`: they run only on cycles nothing else wants, and a request waking up
    /// preempts them at once. The default: a login flood never delays other requests.
    Idle,
    /// nice +10: they yield most of the CPU, but a waking request may wait for the end
    /// of their time slice.
    Low,
    /// The same priority as requests.
    Normal,
}

impl PasswordSettings {
    pub(super) fn read(get: &impl Lookup) -> Result<Self, ConfigError> {
        let bcrypt_cost = parse(get, "BCRYPT_COST", 12u32)?;
        if !(4..=31).contains(&bcrypt_cost) {
            return Err(ConfigError::new("BCRYPT_COST", "must be between 4 and 31"));
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Self {
            bcrypt_cost,
            hash_workers: positive(get, "PASSWORD_HASH_WORKERS", cores)?,
            hash_queue: parse(get, "PASSWORD_HASH_QUEUE", 64usize)?,
            hash_priority: choice(
                get,
                "PASSWORD_HASH_PRIORITY",
                HashPriority::Idle,
                &[
                    (HashPriority::Idle, &["idle"]),
                    (HashPriority::Low, &["low"]),
                    (HashPriority::Normal, &["normal"]),
                ],
            )?,
        })
    }
}
