//! The time the server judges by, passed in rather than read from the system everywhere,
//! so that tests can move it instead of sleeping.
//!
//! An enum rather than a trait object: the guard asks for the time on every request, and
//! the system clock needs no allocation or indirect call.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, SubsecRound, Utc};

/// Where the server's idea of "now" comes from.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The system's clock: what a running server uses.
    #[default]
    System,
    /// A clock a test sets and advances.
    Manual(ManualClock),
}

impl Clock {
    /// The current instant at the precision every backend stores (microseconds).
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Self::System => SystemClock.now(),
            Self::Manual(clock) => clock.now(),
        }
    }
}

impl From<ManualClock> for Clock {
    fn from(clock: ManualClock) -> Self {
        Self::Manual(clock)
    }
}

/// The system's clock, truncated to microseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl SystemClock {
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }
}

/// A clock that stands still until told otherwise; clones share one time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    micros: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock showing `at` (truncated to microseconds).
    pub fn new(at: DateTime<Utc>) -> Self {
        Self {
            micros: Arc::new(AtomicI64::new(at.timestamp_micros())),
        }
    }

    /// A clock showing the system's time now.
    pub fn starting_now() -> Self {
        Self::new(Utc::now())
    }

    pub fn now(&self) -> DateTime<Utc> {
        let micros = self.micros.load(Ordering::SeqCst);
        DateTime::from_timestamp_micros(micros).expect("a ManualClock holds a valid instant")
    }

    pub fn set(&self, at: DateTime<Utc>) {
        self.micros.store(at.timestamp_micros(), Ordering::SeqCst);
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: std::time::Duration) {
        let by = i64::try_from(by.as_micros()).expect("an advance of under 292,000 years");
        self.micros.fetch_add(by, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_its_clones_follow() {
        let start = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let manual = ManualClock::new(start);
        let clock = Clock::from(manual.clone());
        assert_eq!(clock.now(), start);
        manual.advance(std::time::Duration::from_millis(1500));
        assert_eq!(clock.now(), start + chrono::Duration::milliseconds(1500));
        manual.set(start);
        assert_eq!(clock.now(), start);
    }

    #[test]
    fn the_system_clock_has_microsecond_precision() {
        let now = Clock::System.now();
        assert_eq!(now.timestamp_subsec_nanos() % 1000, 0);
    }
}
