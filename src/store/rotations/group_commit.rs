//! Group commit of rotations on an SQLite file: one writer thread, one transaction and
//! one `fsync` for every rotation waiting at that moment.
//!
//! With `synchronous=FULL` each commit waits for the WAL to reach the disk, and a lone
//! rotation per transaction made that wait the ceiling of `refreshToken` (about 850/s on
//! the benchmark machine against 39,000 `me`/s). Here each refresh hands the hash of the
//! token it was given, and its judgement of what it will find (a closure), to a writer
//! thread with a connection of its own, and waits for the answer. The writer takes the
//! first refresh, then every other one already queued (at most [`MAX_BATCH`]), and:
//!
//! 1. begins one `IMMEDIATE` transaction (the write lock, waiting as the pool would);
//! 2. for each refresh, reads the token, its session and its account, asks the judgement,
//!    and runs the rotation it asks for inside a savepoint of its own: a token already
//!    spent, a revoked session or a failed statement rolls back that savepoint only, and
//!    only that request hears of it;
//! 3. commits, and checks that the file is still the one opened at start
//!    (`crate::storage::DatabaseFile`), as every other write does;
//! 4. only then answers each request.
//!
//! Nothing waits for company: a lone refresh is committed as soon as the writer takes it,
//! so a quiet server answers as fast as before; batches form only while a commit is in
//! progress and others queue behind it. A failed commit refuses every refresh of the batch
//! (each read inside the transaction, and may have seen what did not commit), never
//! acknowledging a rotation that is not on disk. The connection is closed after any
//! failure of the transaction itself and opened again for the next batch, so no later
//! batch runs inside a half-finished transaction.
//!
//! The statements are the pool's (`Store::rotate_alone`), and values are written in sqlx's
//! encodings (UUIDs as 16-byte blobs, instants as RFC 3339 text), so that the pool reads
//! what this writes.
//!
//! **Why the read runs here too.** The writer's page cache stays warm from one batch to
//! the next (only another connection's commit empties it), where a reader connection's
//! starts cold after every one of the writer's commits; that cold read was about a sixth
//! of the server's CPU under a refresh load. Reading inside the transaction also means
//! nothing changes between the read and the write: a token presented twice in one batch
//! is found spent by the second, as it would be after a commit.
//!
//! **Checkpoints stay off the commit path.** SQLite's automatic checkpoint (every 1,000 WAL
//! frames) runs inside the commit that crosses the mark, so it ran on this writer: under a
//! refresh load, one commit in a few dozen also copied a thousand pages back into the
//! database file and synced it, while every rotation queued behind it waited (the writer
//! was a third of the server's CPU, and about 40 % of the file reads and writes were the
//! checkpoint's). Here a checkpointer thread with a connection of its own runs a `PASSIVE`
//! checkpoint after every [`CHECKPOINT_EVERY`] committed rotations: it copies the frames
//! and syncs the database file while the writer goes on committing. Those new frames keep
//! its checkpoint from ever being complete, and SQLite starts the WAL over only after a
//! complete one, so the WAL would grow for as long as the load lasts (and every read
//! search it). So when the checkpointer is done, the writer runs one more `PASSIVE`
//! checkpoint between two batches, which has only the frames committed meanwhile left to
//! copy, and its next transaction starts the WAL over. The writer's own automatic
//! checkpoint is kept, at [`WRITER_AUTOCHECKPOINT`] frames, only as a backstop should the
//! checkpointer fall behind or fail.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, params};
use tokio::sync::{mpsc, oneshot};

use super::{Decide, Refreshed, Rotated, Rotation, Step};
use crate::error::AuthError;
use crate::storage::DatabaseFile;
use crate::store::sessions::{SqliteReader, sqlx_instant};

/// Most rotations committed together. Under any load a batch is what queued during the
/// previous commit; this bounds the time one commit holds the write lock.
const MAX_BATCH: usize = 256;

/// Rotations that may wait for the writer; more wait to be queued (backpressure).
const QUEUE: usize = 4096;

/// Committed rotations between two requests for a checkpoint. Chosen when a rotation
/// wrote about five pages (a row per rotation; a token issued before chains still does),
/// so about as many WAL frames as SQLite's default of 1,000; a chain's rotation rewrites
/// its row and its session's, two pages at most and fewer when a batch shares them
/// (`bench/FINDINGS.md`, issue 17 part 11).
const CHECKPOINT_EVERY: u64 = 256;

/// The writer's own automatic checkpoint, in WAL frames: a backstop only (SQLite's default
/// is 1,000).
const WRITER_AUTOCHECKPOINT: u32 = 20_000;

const SPEND: &str = "UPDATE refresh_tokens SET spent_at = ?1 WHERE id = ?2 AND spent_at IS NULL";

const REFRESHED: &str = "UPDATE sessions SET expires_at = ?1, last_used_at = ?2, last_ip = ?3, \
     last_user_agent = ?4 WHERE id = ?5 AND revoked_at IS NULL";

const ADVANCE: &str = "UPDATE refresh_tokens SET generation = ?1 + 1, rotated_at = ?2, \
     expires_at = ?3 WHERE id = ?4 AND generation = ?1 AND spent_at IS NULL";

const INSERT: &str = "INSERT INTO refresh_tokens \
     (id, session_id, token_hash, created_at, expires_at, spent_at, generation, rotated_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, NULL, 0, NULL)";

/// The handle requests queue their rotations on; the writer thread stops when it is
/// dropped (after the batch in hand).
#[cfg_attr(not(test), allow(dead_code))]
pub(in crate::store) struct GroupCommit {
    jobs: mpsc::Sender<Job>,
    /// Transactions the writer has run (committed or not), for tests.
    batches: Arc<AtomicU64>,
    /// Checkpoints the checkpointer has run, for tests.
    checkpoints: Arc<AtomicU64>,
    /// The writer's `max_page_count`, for tests.
    page_limit: Option<i64>,
}

/// A refresh handed to the writer ([`GroupCommit::find_and_rotate`]): read the token
/// stored under the hash, then rotate as the judgement says. The judgement is taken when
/// it runs.
struct Job {
    token_hash: String,
    decide: Option<Decide>,
    answer: oneshot::Sender<Answered>,
}

/// The writer's answer to a [`Job`].
type Answered = Result<Option<Refreshed>, AuthError>;

impl GroupCommit {
    /// Starts the writer for the SQLite file at `path`. `busy_timeout` bounds the wait for
    /// the write lock; `page_limit` is the pool's `max_page_count`, applied to the writer's
    /// connection too.
    pub(in crate::store) fn start(
        path: PathBuf,
        busy_timeout: Duration,
        page_limit: Option<i64>,
        file: Option<Arc<DatabaseFile>>,
    ) -> std::io::Result<Self> {
        let (jobs, queued) = mpsc::channel(QUEUE);
        let batches = Arc::new(AtomicU64::new(0));
        let checkpoints = Arc::new(AtomicU64::new(0));
        // One pending request at most: requests made while a checkpoint runs merge.
        let (checkpoint, asked) = std::sync::mpsc::sync_channel(1);
        let copied = Arc::new(AtomicBool::new(false));
        let checkpointer = Checkpointer {
            path: path.clone(),
            done: checkpoints.clone(),
            copied: copied.clone(),
            conn: None,
        };
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpointer.run(asked))?;
        let writer = Writer {
            batches: batches.clone(),
            path,
            busy_timeout,
            page_limit,
            file,
            conn: None,
            checkpoint,
            since_checkpoint: 0,
            copied,
        };
        std::thread::Builder::new()
            .name("sqlite-group-commit".into())
            .spawn(move || writer.run(queued))?;
        Ok(Self {
            jobs,
            batches,
            checkpoints,
            page_limit,
        })
    }

    /// How many checkpoints the checkpointer has run so far.
    #[cfg(test)]
    pub(in crate::store) fn checkpoints(&self) -> u64 {
        self.checkpoints.load(Ordering::Relaxed)
    }

    /// How many transactions the writer has run so far.
    #[cfg(test)]
    pub(in crate::store) fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    /// The page limit the writer applies.
    #[cfg(test)]
    pub(in crate::store) fn page_limit(&self) -> Option<i64> {
        self.page_limit
    }

    /// How many rotations are queued and not yet taken by the writer.
    #[cfg(test)]
    pub(in crate::store) fn queued(&self) -> usize {
        self.jobs.max_capacity() - self.jobs.capacity()
    }

    /// Queues a refresh's read of the token under `token_hash` and the rotation `decide`
    /// asks for, and waits for its commit. `Err` gives both back when the writer is gone.
    pub(in crate::store) async fn find_and_rotate(
        &self,
        token_hash: String,
        decide: Decide,
    ) -> Result<Answered, (String, Decide)> {
        let (answer, answered) = oneshot::channel();
        let job = Job {
            token_hash,
            decide: Some(decide),
            answer,
        };
        if let Err(mpsc::error::SendError(job)) = self.jobs.send(job).await {
            let decide = job
                .decide
                .expect("a job's judgement is taken only by the writer");
            return Err((job.token_hash, decide));
        }
        Ok(answered.await.unwrap_or_else(|_| {
            // Dropped unanswered: the writer stopped mid-batch, so whether this rotation
            // committed is unknown. A retry inside the grace window finds out.
            Err(AuthError::internal_msg(
                "the SQLite group-commit writer stopped",
            ))
        }))
    }
}

/// The writer thread's state.
struct Writer {
    batches: Arc<AtomicU64>,
    path: PathBuf,
    busy_timeout: Duration,
    page_limit: Option<i64>,
    file: Option<Arc<DatabaseFile>>,
    conn: Option<Connection>,
    /// Asks the checkpointer for a checkpoint (the thread stops when this is dropped).
    checkpoint: std::sync::mpsc::SyncSender<()>,
    /// Rotations committed since the last request for a checkpoint.
    since_checkpoint: u64,
    /// Set by the checkpointer when it has copied what it could: the writer finishes the
    /// checkpoint between two batches.
    copied: Arc<AtomicBool>,
}

impl Writer {
    fn run(mut self, mut queued: mpsc::Receiver<Job>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while let Some(job) = queued.blocking_recv() {
            batch.push(job);
            while batch.len() < MAX_BATCH {
                match queued.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let answers = self.commit(&mut batch);
            self.batches.fetch_add(1, Ordering::Relaxed);
            let committed = answers.iter().filter(|a| wrote(a)).count();
            self.since_checkpoint += committed as u64;
            if self.since_checkpoint >= CHECKPOINT_EVERY {
                // Full: a request is already waiting, which covers this one too.
                let _ = self.checkpoint.try_send(());
                self.since_checkpoint = 0;
            }
            if self.copied.swap(false, Ordering::AcqRel) {
                self.finish_checkpoint();
            }
            for (job, answer) in batch.drain(..).zip(answers) {
                // A request that gave up waiting no longer listens; its rotation stands
                // (a retry inside the grace window gets the successor).
                let _ = job.answer.send(answer);
            }
        }
    }

    /// Commits `batch` in one transaction; one answer per job, in order.
    fn commit(&mut self, batch: &mut [Job]) -> Vec<Answered> {
        let jobs = batch.len();
        let refuse_all = |e: AuthError| (0..jobs).map(|_| Err(e.clone())).collect();
        if let Some(file) = &self.file
            && let Err(gone) = file.check()
        {
            return refuse_all(AuthError::internal(gone));
        }
        // Taken for the batch, and put back only if the transaction ended cleanly: a
        // connection dropped after a failure rolls back whatever it still holds.
        let conn = match self.conn.take().map_or_else(|| self.open(), Ok) {
            Ok(conn) => conn,
            Err(e) => return refuse_all(AuthError::internal(e)),
        };
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            return refuse_all(AuthError::internal(e));
        }
        let mut answers = Vec::with_capacity(batch.len());
        for job in batch.iter_mut() {
            match work(&conn, job) {
                Ok(answer) => answers.push(Ok(answer)),
                Err(Failed::Alone(e)) => answers.push(Err(AuthError::internal(e))),
                // Nothing of the batch can be trusted to commit as written.
                Err(Failed::Batch(e)) => return refuse_all(AuthError::internal(e)),
            }
        }
        if let Err(e) = conn.execute_batch("COMMIT") {
            // Every refresh read inside the transaction: none can be answered.
            return refuse_all(AuthError::internal(e));
        }
        self.conn = Some(conn);
        if let Some(file) = &self.file
            && let Err(gone) = file.check()
        {
            return refuse_all(AuthError::internal(gone));
        }
        answers
    }

    /// Copies the frames committed while the checkpointer worked, so that the next write
    /// transaction can start the WAL over. A failure only leaves the WAL longer: the next
    /// round, or the automatic checkpoint, copies it.
    fn finish_checkpoint(&self) {
        if let Some(conn) = &self.conn
            && let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
        {
            tracing::debug!(%error, "the writer's checkpoint did not run");
        }
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        // The file exists (the server migrated it); never create one.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)?;
        conn.busy_timeout(self.busy_timeout)?;
        // The pool's settings (`crate::db::connect`); the file is in WAL mode already.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        // Checkpoints are the checkpointer's; this one only if it falls behind.
        conn.pragma_update(None, "wal_autocheckpoint", WRITER_AUTOCHECKPOINT)?;
        // Refreshes read here (`work`) from a cache that stays warm. It keeps
        // SQLite's default size (2 MiB): a rotation reads pages the rotations just before
        // it wrote, and 16 MiB (a reader connection's) added 12 MB to the peak RSS for no
        // throughput (bench/FINDINGS.md, issue 17 part 7).
        if let Some(pages) = self.page_limit {
            conn.pragma_update_and_check(None, "max_page_count", pages, |_| Ok(()))?;
        }
        // Plans must not depend on the values bound (see `sessions::sqlite_read`).
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        Ok(conn)
    }
}

/// The checkpointer thread's state: it copies committed WAL frames back into the database
/// file when the writer asks, on a connection of its own.
struct Checkpointer {
    path: PathBuf,
    done: Arc<AtomicU64>,
    /// Tells the writer to finish the checkpoint.
    copied: Arc<AtomicBool>,
    conn: Option<Connection>,
}

impl Checkpointer {
    /// Runs a checkpoint for every request, until the writer is gone.
    fn run(mut self, asked: std::sync::mpsc::Receiver<()>) {
        while asked.recv().is_ok() {
            match self.checkpoint() {
                Ok(()) => self.copied.store(true, Ordering::Release),
                Err(error) => {
                    // The writer's own automatic checkpoint takes over meanwhile; the next
                    // request opens the connection again.
                    tracing::warn!(%error, "the SQLite checkpoint failed");
                    self.conn = None;
                }
            }
            self.done.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A `PASSIVE` checkpoint: it copies what no reader still needs and never waits for
    /// the writer or the readers. With `synchronous=FULL`, SQLite syncs the WAL before
    /// copying and the database file after, as its automatic checkpoint does.
    fn checkpoint(&mut self) -> rusqlite::Result<()> {
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => {
                let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                let conn = Connection::open_with_flags(&self.path, flags)?;
                conn.pragma_update(None, "synchronous", "FULL")?;
                // It never commits, so it never checkpoints by itself.
                conn
            }
        };
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            // Another connection is checkpointing (the writer's backstop): that will do.
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy => {}
            other => other?,
        }
        self.conn = Some(conn);
        Ok(())
    }
}

/// Whether a job's answer says it wrote (a rotation committed with the batch).
fn wrote(answer: &Answered) -> bool {
    matches!(answer, Ok(Some(refreshed)) if refreshed.rotated == Some(Rotated::Done))
}

/// One job of a batch, inside the batch's transaction.
fn work(conn: &Connection, job: &mut Job) -> Result<Option<Refreshed>, Failed> {
    let found = match SqliteReader::refresh_query(conn, &job.token_hash) {
        Ok(found) => found,
        // A failed read wrote nothing; unless it ended the transaction, only this
        // request hears of it.
        Err(e) if conn.is_autocommit() => return Err(Failed::Batch(e)),
        Err(e) => return Err(Failed::Alone(e)),
    };
    let Some(found) = found else {
        return Ok(None);
    };
    let decide = job.decide.take().expect("a job's judgement is taken once");
    let rotated = match decide(&found) {
        Some(rotation) => Some(in_savepoint(conn, &rotation)?),
        None => None,
    };
    Ok(Some(Refreshed { found, rotated }))
}

/// How a rotation failed.
enum Failed {
    /// Its own statements failed and its savepoint was rolled back: only it is refused.
    Alone(rusqlite::Error),
    /// The transaction itself is lost or in doubt (SQLite rolled it back, or a savepoint
    /// could not be released or rolled back): the whole batch is refused.
    Batch(rusqlite::Error),
}

/// One rotation inside a savepoint: kept when it rotated, rolled back otherwise. The
/// savepoint statements are prepared once per connection, like the rotation's own
/// (`execute_batch` parsed them again for every rotation, on the one thread every rotation
/// waits for).
fn in_savepoint(conn: &Connection, r: &Rotation) -> Result<Rotated, Failed> {
    let run = |sql: &str| conn.prepare_cached(sql).and_then(|mut s| s.execute([]));
    run("SAVEPOINT rotation").map_err(Failed::Batch)?;
    let rotated = rotate(conn, r);
    if conn.is_autocommit() {
        // SQLite rolled the whole transaction back (a full disk, an I/O error).
        let e = rotated.err().unwrap_or_else(|| {
            rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
                Some("the transaction was rolled back".into()),
            )
        });
        return Err(Failed::Batch(e));
    }
    match rotated {
        Ok(Rotated::Done) => {
            run("RELEASE rotation").map_err(Failed::Batch)?;
            Ok(Rotated::Done)
        }
        other => {
            // Undo whatever of it ran; if even that fails, its writes may still be in the
            // transaction, which must then not commit.
            run("ROLLBACK TO rotation")
                .and_then(|_| run("RELEASE rotation"))
                .map_err(Failed::Batch)?;
            other.map_err(Failed::Alone)
        }
    }
}

/// The rotation's statements, as `Store::rotate_alone` runs them.
fn rotate(conn: &Connection, r: &Rotation) -> rusqlite::Result<Rotated> {
    let at = sqlx_instant(r.at);
    let expires_at = sqlx_instant(r.expires_at);
    let session = r.session.as_bytes().as_slice();
    let token = r.token.as_bytes().as_slice();
    let spent = match r.step {
        Step::Advance { from } => conn
            .prepare_cached(ADVANCE)?
            .execute(params![from, at, expires_at, token])?,
        Step::Upgrade { .. } => conn.prepare_cached(SPEND)?.execute(params![at, token])?,
    };
    if spent != 1 {
        return Ok(Rotated::AlreadySpent);
    }
    let refreshed = conn.prepare_cached(REFRESHED)?.execute(params![
        expires_at,
        at,
        r.client.ip_text(),
        r.client.user_agent,
        session
    ])?;
    if refreshed != 1 {
        return Ok(Rotated::SessionGone);
    }
    if let Step::Upgrade { chain_hash } = &r.step {
        conn.prepare_cached(INSERT)?.execute(params![
            crate::store::refresh_tokens::new_id().as_bytes().as_slice(),
            session,
            chain_hash,
            at,
            expires_at
        ])?;
    }
    Ok(Rotated::Done)
}

#[cfg(test)]
mod tests;
