//! Reads by key shared across requests, on PostgreSQL and MySQL/MariaDB.
//!
//! The guard's read (is this session live, and whose is it) is made on behalf of nearly
//! every request. One statement per request made the database's round trip, the pool's
//! acquire and its ping on every release the larger part of a `me` (see `bench/FINDINGS.md`,
//! issue 17 part 5; batching the refresh's read too was measured there and not kept). A
//! [`Batcher`] lets at most `slots` reads of its kind run at once. An ask that finds a slot
//! free is read at once, alone, on the caller's own task: a lone request pays nothing for
//! batching (a hand-off to another task cost a lone `me` 40–75 µs here). An ask that finds
//! them all taken waits; the read finishing first then reads every ask waiting at that
//! moment (up to [`MAX_BATCH`]) in one statement, in a task of its own. So the batches grow
//! with the load and not otherwise, and no timer waits for company.
//!
//! A batch reads what is committed when it runs, after every one of its asks was made:
//! what each ask's own statement would have read a moment later. Never inside a write
//! transaction (those read on the transaction's connection).

use std::future::Future;
use std::sync::{Arc, Mutex};

use sea_orm::{DbErr, RuntimeErr};
use tokio::sync::oneshot;

/// The most keys one batch reads.
pub(super) const MAX_BATCH: usize = 64;

/// What a batch hands back to one ask: the value read under its key, if any.
type Answer<V> = Result<Option<V>, Arc<str>>;

/// One request's question, waiting for a batch.
struct Ask<K, V> {
    key: K,
    reply: oneshot::Sender<Answer<V>>,
}

/// The reads running and the asks waiting for one to finish.
struct State<K, V> {
    running: usize,
    waiting: Vec<Ask<K, V>>,
}

/// Reads a batch of distinct keys in one statement.
type Fetch<K, V> =
    Box<dyn Fn(Vec<K>) -> BoxFuture<'static, Result<Vec<(K, V)>, DbErr>> + Send + Sync>;

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the batcher and the reads it started share.
struct Inner<K, V> {
    name: &'static str,
    slots: usize,
    fetch: Fetch<K, V>,
    runtime: tokio::runtime::Handle,
    state: Mutex<State<K, V>>,
}

/// One read's batching: see the module's documentation.
pub(super) struct Batcher<K, V> {
    inner: Arc<Inner<K, V>>,
}

impl<K, V> Batcher<K, V>
where
    K: Ord + Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    /// The batching of the read `name` (the metric's label), which answers a batch of
    /// distinct keys with `fetch` (at most [`MAX_BATCH`] of them; a key with no row is
    /// simply absent from the result), `slots` reads at a time. `None` outside a tokio
    /// runtime.
    pub(super) fn start<F, Fut>(name: &'static str, slots: usize, fetch: F) -> Option<Self>
    where
        F: Fn(Vec<K>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<(K, V)>, DbErr>> + Send + 'static,
    {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let inner = Inner {
            name,
            slots: slots.max(1),
            fetch: Box::new(move |keys| Box::pin(fetch(keys))),
            runtime,
            state: Mutex::new(State {
                running: 0,
                waiting: Vec::new(),
            }),
        };
        Some(Self {
            inner: Arc::new(inner),
        })
    }

    /// The value under `key`. With a read slot free, read at once on the caller's own task
    /// (no hand-off to another task or thread: a lone request pays nothing for batching);
    /// otherwise it waits for the next batch, which the read finishing first starts.
    pub(super) async fn ask(&self, key: K) -> Result<Option<V>, DbErr> {
        let waiting = {
            let mut state = lock(&self.inner.state);
            if state.running < self.inner.slots {
                state.running += 1;
                None
            } else {
                let (reply, answer) = oneshot::channel();
                state.waiting.push(Ask {
                    key: key.clone(),
                    reply,
                });
                Some(answer)
            }
        };
        let answer = match waiting {
            None => {
                // Handed on when this read ends, however it ends (a request dropped
                // mid-read included), so that the asks queued meanwhile are served.
                let _slot = Slot(self.inner.clone());
                record(self.inner.name, 1);
                match (self.inner.fetch)(vec![key.clone()]).await {
                    Ok(found) => Ok(found.into_iter().find(|(k, _)| *k == key).map(|(_, v)| v)),
                    Err(error) => Err(Arc::from(error.to_string())),
                }
            }
            // Every queued ask is answered, unless the runtime is going away.
            Some(answer) => answer.await.unwrap_or_else(|_| Err(stopped())),
        };
        answer.map_err(|e| DbErr::Query(RuntimeErr::Internal(e.to_string())))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn record(name: &'static str, size: usize) {
    // Through the facade each time: a recorder installed after the batcher was made (as in
    // a test process) still gets every read.
    metrics::histogram!(crate::metrics::READ_BATCH_SIZE, "read" => name).record(size as f64);
}

fn stopped() -> Arc<str> {
    Arc::from("the batched read was dropped (the server is shutting down)")
}

/// A read slot held; on drop it serves the asks waiting (in a task of its own, keeping
/// the slot) or frees the slot.
struct Slot<K: Ord + Clone + Send + 'static, V: Clone + Send + 'static>(Arc<Inner<K, V>>);

impl<K: Ord + Clone + Send + 'static, V: Clone + Send + 'static> Drop for Slot<K, V> {
    fn drop(&mut self) {
        if let Some(batch) = next_batch(&self.0) {
            self.0.runtime.spawn(serve(self.0.clone(), batch));
        }
    }
}

/// The asks waiting (at most [`MAX_BATCH`]), the slot kept for them; `None`, the slot
/// freed, when none waits.
fn next_batch<K, V>(inner: &Inner<K, V>) -> Option<Vec<Ask<K, V>>> {
    let mut state = lock(&inner.state);
    if state.waiting.is_empty() {
        state.running -= 1;
        return None;
    }
    let take = state.waiting.len().min(MAX_BATCH);
    Some(state.waiting.drain(..take).collect())
}

/// Serves `batch`, then every batch that queued meanwhile, then frees the slot.
async fn serve<K, V>(inner: Arc<Inner<K, V>>, mut batch: Vec<Ask<K, V>>)
where
    K: Ord + Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    loop {
        record(inner.name, batch.len());
        answer(&inner, batch).await;
        match next_batch(&inner) {
            Some(next) => batch = next,
            None => return,
        }
    }
}

/// Reads the keys of `batch` in one statement and answers each ask.
async fn answer<K, V>(inner: &Inner<K, V>, batch: Vec<Ask<K, V>>)
where
    K: Ord + Clone,
    V: Clone,
{
    let mut keys: Vec<K> = batch.iter().map(|ask| ask.key.clone()).collect();
    keys.sort_unstable();
    keys.dedup();
    match (inner.fetch)(keys).await {
        Ok(found) => {
            for ask in batch {
                let value = found
                    .iter()
                    .find(|(key, _)| *key == ask.key)
                    .map(|(_, value)| value.clone());
                // An ask whose request is gone has no one to answer.
                let _ = ask.reply.send(Ok(value));
            }
        }
        Err(error) => {
            let error: Arc<str> = Arc::from(error.to_string());
            for ask in batch {
                let _ = ask.reply.send(Err(error.clone()));
            }
        }
    }
}

/// How many batches of one read may run at once: a quarter of a pool of `max`
/// connections, at least one, at most two, so that the reads never hold the connections
/// the writes need. More slots make smaller batches, not more reads: with a pool of 32,
/// four slots cost `me` 7–46 % against two on an AMD machine and 10–17 % on an Intel one
/// (`bench/FINDINGS.md`, issue 17 parts 11 and 12), so a larger pool goes to the writes.
pub(super) fn slots_of(max: u32) -> usize {
    usize::try_from(max / 4).unwrap_or(1).clamp(1, MAX_SLOTS)
}

/// The most batches of one read that run at once, whatever the pool's size.
const MAX_SLOTS: usize = 2;

#[cfg(test)]
mod tests {
    use super::*;

    type Fetched = Result<Vec<(u32, u32)>, DbErr>;

    /// A fetch that records its keys and yields once before answering (as a database
    /// would), so that asks made meanwhile queue.
    fn recording(
        calls: Arc<std::sync::Mutex<Vec<Vec<u32>>>>,
    ) -> impl Fn(Vec<u32>) -> BoxFuture<'static, Fetched> {
        move |keys: Vec<u32>| {
            calls.lock().unwrap().push(keys.clone());
            Box::pin(async move {
                tokio::task::yield_now().await;
                if keys.contains(&7) {
                    return Err(DbErr::Custom("down".into()));
                }
                Ok(keys
                    .into_iter()
                    .filter(|k| k % 3 != 0)
                    .map(|k| (k, k * 10))
                    .collect())
            })
        }
    }

    /// The first ask is read at once, alone; those made while it reads share the next
    /// statement, each answered with its own key's value (duplicates and missing keys too).
    #[tokio::test(flavor = "current_thread")]
    async fn asks_waiting_for_a_read_share_the_next_and_each_gets_its_own_answer() {
        let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
        let batcher = Batcher::start("test", 1, recording(calls.clone())).expect("a runtime");
        let keys = [1_u32, 2, 3, 2, 5, 6, 1];
        let answers = futures_util::future::join_all(keys.iter().map(|k| batcher.ask(*k))).await;
        let answers: Vec<Option<u32>> = answers.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            answers,
            [Some(10), Some(20), None, Some(20), Some(50), None, Some(10)]
        );
        assert_eq!(*calls.lock().unwrap(), [vec![1], vec![1, 2, 3, 5, 6]]);
        // All done: the slot is free again, and a lone ask is read alone.
        assert_eq!(batcher.ask(4).await.unwrap(), Some(40));
        assert_eq!(calls.lock().unwrap().last(), Some(&vec![4]));
    }

    /// A failed read fails each ask it read, and no other.
    #[tokio::test(flavor = "current_thread")]
    async fn a_failed_read_fails_every_ask_it_read() {
        let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
        let batcher = Batcher::start("test", 1, recording(calls.clone())).expect("a runtime");
        let (first, a, b) = tokio::join!(batcher.ask(4), batcher.ask(7), batcher.ask(8));
        assert_eq!(first.unwrap(), Some(40));
        assert!(a.unwrap_err().to_string().contains("down"));
        assert!(b.unwrap_err().to_string().contains("down"));
        assert_eq!(*calls.lock().unwrap(), [vec![4], vec![7, 8]]);
    }

    /// A request dropped while its read runs hands its slot on: the asks queued behind it
    /// are still answered.
    #[tokio::test(flavor = "current_thread")]
    async fn a_dropped_read_hands_its_slot_on() {
        let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
        let batcher = Batcher::start("test", 1, recording(calls.clone())).expect("a runtime");
        let mut first = Box::pin(batcher.ask(1));
        assert!(futures_util::poll!(&mut first).is_pending());
        let second = batcher.ask(2);
        let mut second = Box::pin(second);
        assert!(futures_util::poll!(&mut second).is_pending());
        drop(first);
        assert_eq!(second.await.unwrap(), Some(20));
    }

    #[test]
    fn batches_take_a_quarter_of_the_pool_from_one_to_two() {
        assert_eq!(slots_of(1), 1);
        assert_eq!(slots_of(7), 1);
        assert_eq!(slots_of(8), 2);
        assert_eq!(slots_of(10), 2);
        assert_eq!(slots_of(32), 2);
        assert_eq!(slots_of(100), 2);
    }
}
