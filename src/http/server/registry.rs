//! Which open connections may be closed to make room at the connection bound: each
//! connection's offer of its slot, and the accept loop's list of them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::task::AtomicWaker;
use tokio::time::Instant;

/// At most this many connections are closed for room at once (nginx closes up to 32).
const SHED_BATCH: usize = 32;

/// [`Standing::word`] of a connection that holds its slot for a request (begun, in
/// flight, or its response still being written), or is not waiting for one right now.
const HOLDING: u64 = 0;
/// [`Standing::word`] once the accept loop has taken the connection's offer: close.
const SHED: u64 = u64::MAX;

/// One connection's offer to give up its slot. Its own task is the only one to make or
/// withdraw the offer; the accept loop the only one to take it.
pub(super) struct Standing {
    /// [`HOLDING`], [`SHED`], or the offer: since when the connection has been waiting
    /// for a request, in nanoseconds after `epoch`, plus one.
    word: AtomicU64,
    /// The connection task's waker, registered with the offer, woken when it is taken.
    waker: AtomicWaker,
    epoch: Instant,
}

impl Standing {
    fn new(epoch: Instant) -> Self {
        Self {
            word: AtomicU64::new(HOLDING),
            waker: AtomicWaker::new(),
            epoch,
        }
    }

    /// Offers the slot of a connection waiting for a request since `since`, its reader
    /// blocked with nothing received; `true` once the offer has been taken.
    pub(super) fn offer(&self, since: Instant, waker: &std::task::Waker) -> bool {
        // Registered before the offer is visible: whoever takes it wakes this waker.
        self.waker.register(waker);
        match self.word.load(Ordering::Acquire) {
            SHED => true,
            HOLDING => {
                let nanos = since.saturating_duration_since(self.epoch).as_nanos();
                let stamp = u64::try_from(nanos).unwrap_or(u64::MAX).clamp(1, SHED - 1);
                // Only `HOLDING -> stamp` is ours, and the loop never writes `HOLDING`.
                self.word.store(stamp, Ordering::Release);
                false
            }
            _ => false,
        }
    }

    /// Withdraws the offer: a byte of a request arrived, or a write is waiting. An offer
    /// taken meanwhile is declined; the connection stays open.
    pub(super) fn withdraw(&self) {
        self.word.swap(HOLDING, Ordering::AcqRel);
    }

    /// Takes the offer made at `stamp`, if it still stands, and wakes the connection.
    fn take(&self, stamp: u64) -> bool {
        let taken = self
            .word
            .compare_exchange(stamp, SHED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if taken {
            self.waker.wake();
        }
        taken
    }
}

/// The open connections as the accept loop sees them: owned by the loop alone, so adding
/// one takes no lock; entries of connections that ended are dropped in passing.
pub(super) struct Registry {
    epoch: Instant,
    open: Vec<Arc<Standing>>,
    prune_at: usize,
}

impl Registry {
    pub(super) fn new(epoch: Instant) -> Self {
        Self {
            epoch,
            open: Vec::new(),
            prune_at: 64,
        }
    }

    /// Registers a new connection; the connection keeps the returned handle while open.
    pub(super) fn add(&mut self) -> Arc<Standing> {
        if self.open.len() >= self.prune_at {
            self.prune();
            self.prune_at = (2 * self.open.len()).max(64);
        }
        let standing = Arc::new(Standing::new(self.epoch));
        self.open.push(standing.clone());
        standing
    }

    fn prune(&mut self) {
        self.open.retain(|c| Arc::strong_count(c) > 1);
    }

    /// Closes the connections waiting longest for a request that has not begun: an
    /// eighth of those waiting, at least one and at most [`SHED_BATCH`] (nginx's
    /// measure). Returns how many offers it took.
    pub(super) fn shed(&mut self) -> usize {
        self.prune();
        let mut waiting: Vec<(u64, usize)> = self
            .open
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let word = c.word.load(Ordering::Acquire);
                (word != HOLDING && word != SHED).then_some((word, i))
            })
            .collect();
        if waiting.is_empty() {
            return 0;
        }
        let want = (waiting.len() / 8).clamp(1, SHED_BATCH);
        if waiting.len() > want {
            waiting.select_nth_unstable(want - 1);
            waiting.truncate(want);
        }
        waiting
            .into_iter()
            .filter(|&(stamp, i)| self.open[i].take(stamp))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn offered(standing: &Standing) -> bool {
        let word = standing.word.load(Ordering::Acquire);
        word != HOLDING && word != SHED
    }

    #[test]
    fn shedding_closes_the_connections_waiting_longest_and_spares_those_holding_a_request() {
        let epoch = Instant::now();
        let mut registry = Registry::new(epoch);
        let open: Vec<Arc<Standing>> = (0..4).map(|_| registry.add()).collect();
        assert_eq!(registry.shed(), 0, "nothing offered, nothing shed");
        // 0 and 3 wait for a request (3 longest), 1 and 2 hold one.
        let waker = std::task::Waker::noop();
        assert!(!open[0].offer(epoch + Duration::from_secs(5), waker));
        assert!(!open[3].offer(epoch + Duration::from_secs(1), waker));
        assert_eq!(registry.shed(), 1, "one at a time below eight offers");
        assert_eq!(open[3].word.load(Ordering::Acquire), SHED);
        assert!(
            open[3].offer(epoch, waker),
            "the connection sees its offer taken"
        );
        assert!(offered(&open[0]));
        for holding in &open[1..3] {
            assert_eq!(holding.word.load(Ordering::Acquire), HOLDING);
        }
        // Taken while a byte arrived: withdrawing declines it, the connection stays.
        assert_eq!(registry.shed(), 1);
        open[0].withdraw();
        assert_eq!(open[0].word.load(Ordering::Acquire), HOLDING);
        assert!(!open[0].offer(epoch + Duration::from_secs(9), waker));
        assert!(offered(&open[0]));
    }

    #[test]
    fn shedding_takes_an_eighth_of_the_offers_at_most_32_and_skips_ended_connections() {
        let epoch = Instant::now();
        let mut registry = Registry::new(epoch);
        let open: Vec<Arc<Standing>> = (0..400).map(|_| registry.add()).collect();
        let waker = std::task::Waker::noop();
        for (i, standing) in open.iter().enumerate() {
            let since = epoch + Duration::from_millis(1_000 - i as u64);
            assert!(!standing.offer(since, waker));
        }
        assert_eq!(registry.shed(), 32);
        // The 32 waiting longest are the last 32 added.
        assert!(open[..368].iter().all(|c| offered(c)));
        assert!(open[368..].iter().all(|c| !offered(c)));
        // Connections that ended with their offer standing (their handle dropped) are
        // neither counted nor taken; the 32 left are already shed.
        let alive = open[368..].to_vec();
        drop(open);
        assert_eq!(registry.shed(), 0);
        assert_eq!(registry.open.len(), 32);
        assert!(alive.iter().all(|c| c.word.load(Ordering::Acquire) == SHED));
    }
}
