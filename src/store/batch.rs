//! Reads by key shared across requests, on PostgreSQL and MySQL/MariaDB.
//!
//! The guard's read (is this session live, and whose is it) is made on behalf of nearly
//! every request. One statement per request made the database's round trip, the pool's
//! acquire and its ping on every release the larger part of a `me` (see `bench/FINDINGS.md`,
//! issue 17 part 5; batching the refresh's read too was measured there and not kept). A
//! [`Batcher`] is a task of its own per read: it takes one ask, then
//! every other ask waiting at that moment (up to [`MAX_BATCH`]), and reads all their keys
//! in one statement. At most `slots` batches of a read run at once; asks that arrive
//! meanwhile wait for the next one, so the batches grow with the load and not otherwise:
//! no timer waits for company, and a lone ask is read at once, alone.
//!
//! A batch reads what is committed when it runs, after every one of its asks was made:
//! what each ask's own statement would have read a moment later. Never inside a write
//! transaction (those read on the transaction's connection).

use std::future::Future;
use std::sync::Arc;

use sea_orm::{DbErr, RuntimeErr};
use tokio::sync::{Semaphore, mpsc, oneshot};

/// The most keys one batch reads.
pub(super) const MAX_BATCH: usize = 64;

/// What a batch hands back to one ask: the value read under its key, if any.
type Answer<V> = Result<Option<V>, Arc<str>>;

/// One request's question, waiting for a batch.
struct Ask<K, V> {
    key: K,
    reply: oneshot::Sender<Answer<V>>,
}

/// The queue of one read's batching task.
pub(super) struct Batcher<K, V> {
    asks: mpsc::UnboundedSender<Ask<K, V>>,
}

impl<K, V> Batcher<K, V>
where
    K: Ord + Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    /// Starts the task of the read `name` (the metric's label), which answers a batch of
    /// distinct keys with `fetch` (at most [`MAX_BATCH`] of them; a key with no row is
    /// simply absent from the result), `slots` batches at a time. `None` outside a tokio
    /// runtime. The task ends when the batcher is dropped.
    pub(super) fn start<F, Fut>(name: &'static str, slots: usize, fetch: F) -> Option<Self>
    where
        F: Fn(Vec<K>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<(K, V)>, DbErr>> + Send + 'static,
    {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let (asks, queue) = mpsc::unbounded_channel();
        runtime.spawn(run(name, slots.max(1), Arc::new(fetch), queue));
        Some(Self { asks })
    }

    /// The value under `key`, read in the next batch.
    pub(super) async fn ask(&self, key: K) -> Result<Option<V>, DbErr> {
        let (reply, answer) = oneshot::channel();
        let answer = match self.asks.send(Ask { key, reply }) {
            // The task answers every ask it takes, unless the runtime is going away.
            Ok(()) => answer.await.unwrap_or_else(|_| Err(stopped())),
            Err(_) => Err(stopped()),
        };
        answer.map_err(|e| DbErr::Query(RuntimeErr::Internal(e.to_string())))
    }
}

fn stopped() -> Arc<str> {
    Arc::from("the batched read's task stopped (the server is shutting down)")
}

/// The batching task: runs until the [`Batcher`] is dropped.
async fn run<K, V, F, Fut>(
    name: &'static str,
    slots: usize,
    fetch: Arc<F>,
    mut queue: mpsc::UnboundedReceiver<Ask<K, V>>,
) where
    K: Ord + Clone + Send + 'static,
    V: Clone + Send + 'static,
    F: Fn(Vec<K>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Vec<(K, V)>, DbErr>> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(slots));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = queue.recv().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(ask) => batch.push(ask),
                Err(_) => break,
            }
        }
        // Through the facade each time: a recorder installed after this task started (as
        // in a test process) still gets every batch.
        metrics::histogram!(crate::metrics::READ_BATCH_SIZE, "read" => name)
            .record(batch.len() as f64);
        let fetch = fetch.clone();
        tokio::spawn(async move {
            answer(&*fetch, batch).await;
            drop(slot);
        });
    }
}

/// Reads the keys of `batch` with `fetch` and answers each ask.
async fn answer<K, V, F, Fut>(fetch: &F, batch: Vec<Ask<K, V>>)
where
    K: Ord + Clone,
    V: Clone,
    F: Fn(Vec<K>) -> Fut,
    Fut: Future<Output = Result<Vec<(K, V)>, DbErr>>,
{
    let mut keys: Vec<K> = batch.iter().map(|ask| ask.key.clone()).collect();
    keys.sort_unstable();
    keys.dedup();
    match fetch(keys).await {
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
/// connections, at least one, at most four, so that the reads never hold the connections
/// the writes need.
pub(super) fn slots_of(max: u32) -> usize {
    usize::try_from(max / 4).unwrap_or(1).clamp(1, 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asks made before the task runs (one thread: none runs until the test yields) share
    /// one batch, each answered with its own key's value; duplicates and missing keys too.
    #[tokio::test(flavor = "current_thread")]
    async fn waiting_asks_share_a_batch_and_each_gets_its_own_answer() {
        let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = calls.clone();
        let batcher = Batcher::start("test", 1, move |keys: Vec<u32>| {
            seen.lock().unwrap().push(keys.clone());
            async move {
                Ok(keys
                    .into_iter()
                    .filter(|k| k % 3 != 0)
                    .map(|k| (k, k * 10))
                    .collect())
            }
        })
        .expect("inside a runtime");
        let keys = [1_u32, 2, 3, 2, 5, 6, 1];
        let answers = futures_util::future::join_all(keys.iter().map(|k| batcher.ask(*k))).await;
        let answers: Vec<Option<u32>> = answers.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            answers,
            [Some(10), Some(20), None, Some(20), Some(50), None, Some(10)]
        );
        assert_eq!(*calls.lock().unwrap(), [vec![1, 2, 3, 5, 6]]);
    }

    /// A lone ask is read at once, alone; a failed read fails each of its asks.
    #[tokio::test(flavor = "current_thread")]
    async fn a_lone_ask_is_read_alone_and_failures_reach_every_ask() {
        let batcher = Batcher::start("test", 1, |keys: Vec<u32>| async move {
            if keys.contains(&7) {
                Err(DbErr::Custom("down".into()))
            } else {
                Ok(keys.into_iter().map(|k| (k, ())).collect())
            }
        })
        .expect("inside a runtime");
        assert_eq!(batcher.ask(1).await.unwrap(), Some(()));
        let (a, b) = tokio::join!(batcher.ask(7), batcher.ask(8));
        assert!(a.unwrap_err().to_string().contains("down"));
        assert!(b.unwrap_err().to_string().contains("down"));
    }

    #[test]
    fn batches_take_a_quarter_of_the_pool_from_one_to_four() {
        assert_eq!(slots_of(1), 1);
        assert_eq!(slots_of(10), 2);
        assert_eq!(slots_of(100), 4);
    }
}
