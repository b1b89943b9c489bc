//! Connections the hot reads and rotations keep between uses, on PostgreSQL and
//! MySQL/MariaDB, so that each use does not pay sqlx's ping on release.
//!
//! sqlx pings every connection it takes back into its pool, unconditionally
//! (`PoolConnection::return_to_pool`): a round trip per refresh and per batch of the guard's
//! reads that the databases' own benchmark tools never send (`bench/FINDINGS.md`, issue 17
//! parts 8, 12 and 13: `me` 2.2 round trips to 1.05, a PostgreSQL refresh 3.4 to 2.1).
//! [`Warm`] keeps a few connections checked out of the pool after a use that ended
//! cleanly, and hands them to the next use without that round trip.
//!
//! What the ping guarded is kept another way:
//! - **A use that did not end cleanly** (an error, a request dropped mid-statement, a
//!   connection left inside a transaction) never comes back here: its connection is
//!   dropped into the pool as before, which pings it and closes it if broken (and
//!   `crate::db`'s release hook closes one left inside a transaction).
//! - **A connection idle for [`IDLE`]** or more is handed back to the pool (so pinged)
//!   rather than used, the same threshold as the pool's own ping before a checkout of an
//!   idle connection (`crate::db`): a database restarted meanwhile is noticed before a
//!   request is sent on a dead connection. A sweep every [`IDLE`] hands back the ones no
//!   use came for, so a quiet server holds none.
//! - **A connection kept for [`LIFETIME`]** goes back too, so the pool's own lifetime and
//!   idle rules still see every connection now and then.
//! - **The rest of the server still gets connections:** at most three quarters of the
//!   pool (none for a pool under four) are ever lent from here at once, so sign-ups,
//!   logins and the background jobs always have the other quarter.
//! - **First come, first served:** a use waits for one of those three quarters in one
//!   FIFO queue (a fair semaphore) before it takes a kept connection or, when none is
//!   kept, one of the pool's. A first version without that queue let each connection given
//!   back go to whichever request arrived next, while the ones already queued at the pool
//!   waited for the few connections still going through it: refresh p99 reached 0.4–2.6 s
//!   (`bench/FINDINGS.md`, issue 17 part 12).
//! - **Nothing else changes:** the kept connections are the pool's, checked out; they
//!   count against `DATABASE_MAX_CONNECTIONS` and carry its session settings and hooks.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use sea_orm::sqlx::pool::PoolConnection;
use sea_orm::sqlx::{Connection as _, Database, Pool};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a kept connection may sit unused and still be handed out without a ping.
pub(super) const IDLE: Duration = Duration::from_secs(1);

/// How long a connection may stay kept, in use or not, before it goes back to the pool.
pub(super) const LIFETIME: Duration = Duration::from_secs(60);

/// A connection kept, with when it was kept first and when its last use ended.
struct Kept<DB: Database> {
    conn: PoolConnection<DB>,
    since: Instant,
    used: Instant,
}

/// A connection lent out by [`Warm::take`]: give it back with [`Warm::put`] after a use
/// that ended cleanly; dropped, it goes back to the pool (and its ping), then its place in
/// the queue goes to the next use (fields drop in order).
pub(super) struct Lent<DB: Database> {
    pub(super) conn: PoolConnection<DB>,
    since: Instant,
    _turn: Option<OwnedSemaphorePermit>,
}

/// The connections kept for one pool: see the module's documentation.
pub(super) struct Warm<DB: Database> {
    pool: Pool<DB>,
    keep: usize,
    kept: Mutex<Vec<Kept<DB>>>,
    /// One permit per connection that may be lent at once (`keep`); none when `keep` is 0.
    turns: Option<Arc<Semaphore>>,
}

impl<DB: Database> Warm<DB> {
    /// The kept connections of `pool`: at most three quarters of its size, none under
    /// four. Inside a tokio runtime a sweep hands back the unused ones every [`IDLE`].
    pub(super) fn new(pool: Pool<DB>) -> Arc<Self> {
        let max = pool.options().get_max_connections();
        let keep = if max < 4 {
            0
        } else {
            usize::try_from(u64::from(max) * 3 / 4).unwrap_or(0)
        };
        let warm = Arc::new(Self {
            pool,
            keep,
            kept: Mutex::new(Vec::new()),
            turns: (keep > 0).then(|| Arc::new(Semaphore::new(keep))),
        });
        if keep > 0
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(sweep(Arc::downgrade(&warm)));
        }
        warm
    }

    /// The pool the connections come from.
    pub(super) fn pool(&self) -> &Pool<DB> {
        &self.pool
    }

    /// A connection, once this use's turn has come: the one kept that was used last, if it
    /// is still fresh, else one of the pool's.
    pub(super) async fn take(&self) -> Result<Lent<DB>, sea_orm::sqlx::Error> {
        let turn = match &self.turns {
            Some(turns) => Some(
                Arc::clone(turns)
                    .acquire_owned()
                    .await
                    .map_err(|_| sea_orm::sqlx::Error::PoolClosed)?,
            ),
            None => None,
        };
        let now = Instant::now();
        let (fresh, stale) = self.pick(now);
        // Back to the pool, outside the lock: each is pinged there.
        drop(stale);
        match fresh {
            Some(k) => Ok(Lent {
                conn: k.conn,
                since: k.since,
                _turn: turn,
            }),
            None => Ok(Lent {
                conn: self.pool.acquire().await?,
                since: now,
                _turn: turn,
            }),
        }
    }

    /// The kept connection to lend at `now`, if any is fresh, and those to hand back.
    fn pick(&self, now: Instant) -> (Option<Kept<DB>>, Vec<Kept<DB>>) {
        let mut stale = Vec::new();
        let mut kept = lock(&self.kept);
        loop {
            match kept.pop() {
                Some(k) if fresh(&k, now) => return (Some(k), stale),
                // Kept too long: the ones behind it may still serve.
                Some(k) if now.duration_since(k.used) < IDLE => stale.push(k),
                // Idle too long: the ones behind it were used before it, so all are.
                Some(k) => {
                    stale.push(k);
                    stale.append(&mut kept);
                    return (None, stale);
                }
                None => return (None, stale),
            }
        }
    }

    /// Gives back `lent` after a use that ended cleanly: kept for the next use if there is
    /// room and it is outside any transaction, else handed back to the pool.
    pub(super) fn put(&self, lent: Lent<DB>) {
        let now = Instant::now();
        if lent.conn.is_in_transaction()
            || self.pool.is_closed()
            || now.duration_since(lent.since) >= LIFETIME
        {
            return;
        }
        let Lent {
            conn,
            since,
            _turn: turn,
        } = lent;
        let mut kept = lock(&self.kept);
        if kept.len() < self.keep {
            kept.push(Kept {
                conn,
                since,
                used: now,
            });
            // The next use's turn comes only now, with the connection there for it.
            drop(kept);
            drop(turn);
        } else {
            // Back to the pool (and its ping) once the lock is released.
            drop(kept);
            drop(conn);
            drop(turn);
        }
    }

    /// How many connections are kept now (for tests).
    #[cfg(test)]
    pub(super) fn kept(&self) -> usize {
        lock(&self.kept).len()
    }

    /// Hands back to the pool every kept connection unused since `IDLE` before `now`.
    fn hand_back_idle(&self, now: Instant) {
        let stale: Vec<Kept<DB>> = {
            let mut kept = lock(&self.kept);
            let (stale, fresh): (Vec<_>, Vec<_>) = kept.drain(..).partition(|k| !fresh(k, now));
            *kept = fresh;
            stale
        };
        drop(stale);
    }
}

/// Whether `k` may be handed out at `now` without going back to the pool first.
fn fresh<DB: Database>(k: &Kept<DB>, now: Instant) -> bool {
    now.duration_since(k.used) < IDLE && now.duration_since(k.since) < LIFETIME
}

/// Every [`IDLE`], hands back the connections no use came for; ends with the [`Warm`].
async fn sweep<DB: Database>(warm: Weak<Warm<DB>>) {
    let mut tick = tokio::time::interval(IDLE);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(warm) = warm.upgrade() else { return };
        warm.hand_back_idle(Instant::now());
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use sea_orm::sqlx::sqlite::{Sqlite, SqlitePoolOptions};
    use sea_orm::sqlx::{self, AssertSqlSafe};

    use super::*;

    async fn pool(max: u32) -> Pool<Sqlite> {
        SqlitePoolOptions::new()
            .max_connections(max)
            .connect("sqlite::memory:")
            .await
            .unwrap()
    }

    /// Whether `lent`'s connection holds temporary table `name` (a temporary table is its
    /// connection's own, so it marks one).
    async fn has(lent: &mut Lent<Sqlite>, name: &str) -> bool {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_temp_master WHERE type = 'table' AND name = ?",
        )
        .bind(name)
        .fetch_one(&mut *lent.conn)
        .await
        .unwrap();
        n == 1
    }

    async fn mark(lent: &mut Lent<Sqlite>, name: &str) {
        sqlx::query(AssertSqlSafe(format!("CREATE TEMP TABLE {name} (x)")))
            .execute(&mut *lent.conn)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn lends_at_most_three_quarters_of_the_pool_and_keeps_none_of_a_small_one() {
        let warm = Warm::new(pool(8).await);
        let mut lent = Vec::new();
        for _ in 0..6 {
            lent.push(warm.take().await.unwrap());
        }
        // A seventh use waits for its turn...
        let seventh = tokio::time::timeout(Duration::from_millis(200), warm.take()).await;
        assert!(seventh.is_err(), "a seventh connection was lent");
        // ...while the rest of the server still finds the pool's other two.
        let mut others = Vec::new();
        for _ in 0..2 {
            let conn = tokio::time::timeout(Duration::from_secs(5), warm.pool().acquire());
            others.push(conn.await.expect("a pool connection is free").unwrap());
        }
        for l in lent {
            warm.put(l);
        }
        assert_eq!(warm.kept(), 6);

        let small = Warm::new(pool(3).await);
        let l = small.take().await.unwrap();
        small.put(l);
        assert_eq!(small.kept(), 0);
        // Without kept connections there is no queue of its own: the pool's three serve.
        let all: Vec<_> = [small.take().await, small.take().await, small.take().await]
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(all.len(), 3);
    }

    #[tokio::test]
    async fn uses_waiting_for_a_connection_are_served_in_the_order_they_came() {
        // Four connections, three lendable: all three out, the fourth held by the rest of
        // the server, then five uses queue.
        let warm = Warm::new(pool(4).await);
        let mut out = Vec::new();
        for _ in 0..3 {
            out.push(warm.take().await.unwrap());
        }
        let other = warm.pool().acquire().await.unwrap();
        let (served, mut order) = tokio::sync::mpsc::unbounded_channel();
        let mut waiting = Vec::new();
        for i in 0..5_u32 {
            let warm = Arc::clone(&warm);
            let served = served.clone();
            waiting.push(tokio::spawn(async move {
                let lent = warm.take().await.unwrap();
                served.send(i).unwrap();
                // Held a moment, so that the next in line is the one a give-back wakes.
                tokio::task::yield_now().await;
                warm.put(lent);
            }));
            // Each in the queue before the next one comes (a test runtime has one thread,
            // so the task runs to its wait here).
            for _ in 0..8 {
                tokio::task::yield_now().await;
            }
        }
        // A use that comes once the connections are given back goes behind the five
        // waiting, even though a kept connection is there for it at once.
        for l in out {
            warm.put(l);
        }
        let late = tokio::time::timeout(Duration::from_secs(5), warm.take())
            .await
            .expect("the late use is served")
            .unwrap();
        served.send(5).unwrap();
        drop(served);
        let mut got = Vec::new();
        while let Ok(Some(i)) = tokio::time::timeout(Duration::from_secs(5), order.recv()).await {
            got.push(i);
        }
        assert_eq!(got, vec![0, 1, 2, 3, 4, 5]);
        warm.put(late);
        drop(other);
        for w in waiting {
            w.await.unwrap();
        }
    }

    #[tokio::test]
    async fn the_last_given_back_is_lent_first() {
        let warm = Warm::new(pool(8).await);
        let mut a = warm.take().await.unwrap();
        let mut b = warm.take().await.unwrap();
        mark(&mut a, "a").await;
        mark(&mut b, "b").await;
        warm.put(a);
        warm.put(b);
        let mut next = warm.take().await.unwrap();
        assert!(has(&mut next, "b").await);
        assert!(!has(&mut next, "a").await);
        assert_eq!(warm.kept(), 1);
    }

    #[tokio::test]
    async fn a_connection_inside_a_transaction_or_dropped_is_not_kept() {
        let warm = Warm::new(pool(8).await);
        let mut lent = warm.take().await.unwrap();
        let txn = sqlx::Connection::begin(&mut *lent.conn).await.unwrap();
        // A transaction sqlx still counts, as after a use that did not end cleanly.
        std::mem::forget(txn);
        assert!(lent.conn.is_in_transaction());
        warm.put(lent);
        assert_eq!(warm.kept(), 0);

        let dropped = warm.take().await.unwrap();
        drop(dropped);
        assert_eq!(warm.kept(), 0);
    }

    #[tokio::test]
    async fn connections_unused_for_the_idle_time_go_back_to_the_pool() {
        let warm = Warm::new(pool(8).await);
        let mut a = warm.take().await.unwrap();
        let b = warm.take().await.unwrap();
        mark(&mut a, "a").await;
        warm.put(a);
        warm.put(b);
        let now = Instant::now();
        warm.hand_back_idle(now + IDLE / 2);
        assert_eq!(warm.kept(), 2);
        warm.hand_back_idle(now + IDLE);
        assert_eq!(warm.kept(), 0);
    }

    #[tokio::test]
    async fn a_connection_kept_too_long_goes_back_and_the_one_behind_it_serves() {
        let warm = Warm::new(pool(8).await);
        let mut a = warm.take().await.unwrap();
        let b = warm.take().await.unwrap();
        mark(&mut a, "a").await;
        warm.put(a);
        warm.put(b);
        let now = Instant::now();
        // `b`, on top, has been kept for the whole lifetime (used a moment ago).
        lock(&warm.kept)[1].since = now - LIFETIME;
        let (lent, stale) = warm.pick(now);
        assert_eq!(stale.len(), 1);
        let mut lent = Lent {
            conn: lent.expect("`a` is still fresh").conn,
            since: now,
            _turn: None,
        };
        assert!(has(&mut lent, "a").await);
        // Idle for the idle time: nothing is lent, everything goes back.
        warm.put(lent);
        let (lent, stale) = warm.pick(Instant::now() + IDLE);
        assert!(lent.is_none());
        assert_eq!(stale.len(), 1);
        assert_eq!(warm.kept(), 0);
    }
}
