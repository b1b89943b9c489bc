//! The accept loop: a bound on open connections, the header-read and keep-alive timeouts,
//! the descriptor limit, and graceful shutdown. It replaces `axum::serve`, which has
//! none of the first three.
//!
//! A connection's clock, per phase (one timer per connection, reset at phase changes):
//!
//! ```text
//!  accept ──► head ──(request head parsed)──► busy ──(response body handed over)──► idle
//!              ▲  HTTP_HEADER_READ_TIMEOUT       no read deadline                   │ HTTP_KEEP_ALIVE_TIMEOUT
//!              └──────────────(first byte of the next request)──────────────────────┘
//! ```
//!
//! A deadline that passes closes the connection. The request itself (body included) is
//! bounded by the router's request timeout; `busy` lasts until hyper has taken the whole
//! response body (or dropped it).
//!
//! At the bound (`HTTP_MAX_CONNECTIONS`) the accept loop takes the next connection and
//! makes room for it the way nginx treats keep-alive connections under pressure: it
//! closes the connections that hold a slot while waiting for a request that has not begun
//! (`head` before the connection's first byte, or `idle`), the longest-waiting first
//! ([`Registry::shed`]). A connection that has received a byte of a request head, has a
//! request or response in flight, or whose last write found the socket full (a response
//! not yet read by the client), is never closed for room: the loop then waits for a
//! slot, looking again every [`SHED_RECHECK`]. Each connection publishes whether it may
//! be shed in its own atomic word, written by its own task when its reader blocks; the
//! loop alone keeps the list of them, so a request takes no lock and touches nothing
//! another connection writes.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use futures_util::task::AtomicWaker;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError, watch};
use tokio::time::{Instant, MissedTickBehavior, Sleep};
use tower::Service;
use tower::ServiceExt;
use tower::util::Oneshot;

use crate::config::HttpSettings;

/// How long the accept loop pauses after an error such as `EMFILE` (out of descriptors)
/// before trying again: it never spins on a persistent error.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(250);
/// At most one "connection limit reached" warning per this period.
const FULL_WARNING_EVERY: Duration = Duration::from_secs(60);
/// Descriptors kept for everything but client connections (listener, epoll, stdio,
/// files), on top of three per database connection (a SQLite connection holds up to
/// three files; a server database one socket).
const RESERVED_DESCRIPTORS: usize = 64;
/// While a connection waits for a slot and none could be freed, how often the loop looks
/// again for connections that have become idle since (or that took back their offer).
const SHED_RECHECK: Duration = Duration::from_millis(100);
/// At most this many connections are closed for room at once (nginx closes up to 32).
const SHED_BATCH: usize = 32;

/// Serves `app` on `listener` until `stop` completes, then stops accepting, lets every
/// connection finish its request in flight, and returns.
pub async fn serve<S>(
    listener: TcpListener,
    app: S,
    settings: &HttpSettings,
    database_connections: usize,
    stop: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
{
    let reserved = RESERVED_DESCRIPTORS + 3 * database_connections;
    let limit = connection_limit(settings.max_connections, raise_descriptor_limit(), reserved);
    let timeouts = Timeouts {
        header: settings.header_read_timeout,
        idle: settings.keep_alive_timeout,
    };
    let slots = Arc::new(Semaphore::new(limit));
    let mut registry = Registry::new(Instant::now());
    let (shutdown, shutting_down) = watch::channel(false);
    let mut stop = pin!(stop);
    let mut last_full_warning: Option<Instant> = None;
    let mut accept_failing = false;
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    if !accept_failing {
                        tracing::error!(error = %e, "accept error; retrying every {ACCEPT_ERROR_PAUSE:?}");
                        accept_failing = true;
                    }
                    tokio::select! {
                        biased;
                        () = &mut stop => break,
                        () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => continue,
                    }
                }
            },
        };
        if accept_failing {
            tracing::info!("accepting connections again");
            accept_failing = false;
        }
        // The accepted connection is one descriptor past the bound until it has a slot;
        // the reserve covers it, and the connections behind it wait in the listen backlog.
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(TryAcquireError::Closed) => break, // never closed
            Err(TryAcquireError::NoPermits) => {
                if last_full_warning.is_none_or(|t| t.elapsed() >= FULL_WARNING_EVERY) {
                    tracing::warn!(
                        limit,
                        "connection limit reached: closing idle connections to make room; \
                         new connections wait while every connection is busy (HTTP_MAX_CONNECTIONS)"
                    );
                    last_full_warning = Some(Instant::now());
                }
                match make_room(&slots, &mut registry, stop.as_mut()).await {
                    Some(slot) => slot,
                    None => break,
                }
            }
        };
        let standing = registry.add();
        let app = app.clone();
        let shutting_down = shutting_down.clone();
        tokio::spawn(async move {
            connection(stream, peer, app, timeouts, standing, shutting_down).await;
            drop(slot);
        });
    }
    drop(listener);
    let _ = shutdown.send(true);
    // Every connection holds a slot until it ends: all slots back means all drained.
    let all = u32::try_from(limit).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    Ok(())
}

/// Closes idle connections until a slot is free, and returns it; `None` once `stop`
/// completes first.
async fn make_room(
    slots: &Arc<Semaphore>,
    registry: &mut Registry,
    mut stop: Pin<&mut impl Future<Output = ()>>,
) -> Option<OwnedSemaphorePermit> {
    let mut recheck = tokio::time::interval(SHED_RECHECK);
    recheck.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = &mut stop => return None,
            slot = slots.clone().acquire_owned() => return slot.ok(),
            // The first tick is immediate.
            _ = recheck.tick() => {
                let shed = registry.shed();
                if shed > 0 {
                    tracing::debug!(shed, "closed idle connections at the connection limit");
                }
            }
        }
    }
}

/// The bound actually enforced: the configured one, lowered to what the descriptor limit
/// leaves after `reserved` descriptors (never below 1).
pub fn connection_limit(configured: usize, descriptors: Option<u64>, reserved: usize) -> usize {
    let Some(descriptors) = descriptors else {
        return configured;
    };
    let available = usize::try_from(descriptors)
        .unwrap_or(usize::MAX)
        .saturating_sub(reserved)
        .max(1);
    if available < configured {
        tracing::warn!(
            configured,
            enforced = available,
            descriptor_limit = descriptors,
            "HTTP_MAX_CONNECTIONS is above what the open-file limit allows; lowered"
        );
        available
    } else {
        tracing::info!(max_connections = configured, "connection limit");
        configured
    }
}

/// Raises the soft open-file limit to the hard one (a process may always do so) and
/// returns the soft limit now in force; `None` where it cannot be read.
#[cfg(target_os = "linux")]
pub fn raise_descriptor_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        tracing::warn!(error = %io::Error::last_os_error(), "could not read the open-file limit");
        return None;
    }
    let before = limit.rlim_cur;
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads the struct we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            tracing::info!(
                from = before,
                to = raised.rlim_cur,
                "raised the open-file limit to its hard limit"
            );
            return Some(raised.rlim_cur);
        }
        tracing::warn!(error = %io::Error::last_os_error(), soft = before, "could not raise the open-file limit");
    } else {
        tracing::info!(
            limit = before,
            "open-file limit (already at its hard limit)"
        );
    }
    Some(before)
}

/// Elsewhere the limit is left as it is.
#[cfg(not(target_os = "linux"))]
pub fn raise_descriptor_limit() -> Option<u64> {
    None
}

/// Errors of one connection that never reached `accept`'s caller: try the next one.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// [`Standing::word`] of a connection that holds its slot for a request (begun, in
/// flight, or its response still being written), or is not waiting for one right now.
const HOLDING: u64 = 0;
/// [`Standing::word`] once the accept loop has taken the connection's offer: close.
const SHED: u64 = u64::MAX;

/// One connection's offer to give up its slot. Its own task is the only one to make or
/// withdraw the offer; the accept loop the only one to take it.
struct Standing {
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
    fn offer(&self, since: Instant, waker: &std::task::Waker) -> bool {
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
    fn withdraw(&self) {
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
struct Registry {
    epoch: Instant,
    open: Vec<Arc<Standing>>,
    prune_at: usize,
}

impl Registry {
    fn new(epoch: Instant) -> Self {
        Self {
            epoch,
            open: Vec::new(),
            prune_at: 64,
        }
    }

    /// Registers a new connection; the connection keeps the returned handle while open.
    fn add(&mut self) -> Arc<Standing> {
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
    fn shed(&mut self) -> usize {
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

#[derive(Clone, Copy, Debug)]
struct Timeouts {
    header: Duration,
    idle: Option<Duration>,
}

/// Serves one connection over HTTP/1.1 until it closes, a deadline passes, or shutdown
/// (which lets the request in flight finish and then closes).
async fn connection<S>(
    stream: TcpStream,
    peer: SocketAddr,
    app: S,
    timeouts: Timeouts,
    standing: Arc<Standing>,
    mut shutting_down: watch::Receiver<bool>,
) where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    // Odd from a request's head to the end of its response body, even between requests.
    let phase = Arc::new(AtomicU64::new(0));
    let io = TokioIo::new(Deadlines::new(stream, phase.clone(), timeouts, standing));
    let service = Tracked { app, peer, phase };
    let mut builder = hyper::server::conn::http1::Builder::new();
    // Header deadlines are the `Deadlines` wrapper's (hyper's own timer would also cut
    // idle keep-alive connections at the header timeout).
    builder
        .keep_alive(timeouts.idle.is_some())
        .header_read_timeout(None);
    let mut conn = pin!(builder.serve_connection(io, service));
    let shutdown = async move {
        // The guard `wait_for` returns must not live across the drain below.
        let _ = shutting_down.wait_for(|down| *down).await.map(drop);
    };
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = shutdown => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection closed with an error");
    }
}

/// The router as hyper's service for one connection: adds `ConnectInfo` (the peer) to each
/// request and marks when the connection is busy with one.
#[derive(Clone)]
struct Tracked<S> {
    app: S,
    peer: SocketAddr,
    phase: Arc<AtomicU64>,
}

impl<S> hyper::service::Service<http::Request<Incoming>> for Tracked<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Finished<Oneshot<S, Request>>;

    fn call(&self, request: http::Request<Incoming>) -> Self::Future {
        self.phase.fetch_add(1, Ordering::Release);
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(self.peer));
        Finished {
            inner: self.app.clone().oneshot(request),
            phase: Some(self.phase.clone()),
        }
    }
}

pin_project_lite::pin_project! {
    /// A response future whose body marks the connection idle again once hyper is done
    /// with it (all of it handed over for writing, or dropped).
    struct Finished<F> {
        #[pin]
        inner: F,
        phase: Option<Arc<AtomicU64>>,
    }
}

impl<F: Future<Output = Result<Response, Infallible>>> Future for Finished<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let Ok(response) = ready!(this.inner.poll(cx));
        Poll::Ready(Ok(match this.phase.take() {
            Some(phase) => response.map(|body| {
                Body::new(Sending {
                    inner: body,
                    _done: PhaseStep(phase),
                })
            }),
            None => response,
        }))
    }
}

/// A response body that ends the connection's `busy` phase when hyper drops it.
struct Sending {
    inner: Body,
    _done: PhaseStep,
}

impl hyper::body::Body for Sending {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Steps the connection's phase (busy to idle) when dropped.
struct PhaseStep(Arc<AtomicU64>);

impl Drop for PhaseStep {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Release);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Clock {
    /// Waiting for the rest of a request head: the header deadline runs.
    Head,
    /// A request is being handled: no read deadline.
    Busy,
    /// Between requests, before the first byte of the next: the keep-alive deadline runs.
    Idle,
}

/// The socket with the read deadlines of the module's diagram. A read that would wait past
/// the running deadline fails with `TimedOut`, which closes the connection.
/// It also makes and withdraws the connection's offer of its slot ([`Standing`]).
struct Deadlines {
    stream: TcpStream,
    phase: Arc<AtomicU64>,
    seen: u64,
    clock: Clock,
    /// When the running clock started.
    since: Instant,
    deadline: Pin<Box<Sleep>>,
    timeouts: Timeouts,
    standing: Arc<Standing>,
    /// Whether the slot is on offer (a copy of the shared word's state, read for free).
    offered: bool,
    /// Whether any byte has arrived on this connection.
    received: bool,
    /// Whether the last write found the socket full: the client is not reading.
    write_blocked: bool,
}

impl Deadlines {
    fn new(
        stream: TcpStream,
        phase: Arc<AtomicU64>,
        timeouts: Timeouts,
        standing: Arc<Standing>,
    ) -> Self {
        let now = Instant::now();
        Self {
            stream,
            phase,
            seen: 0,
            clock: Clock::Head,
            since: now,
            deadline: Box::pin(tokio::time::sleep_until(now + timeouts.header)),
            timeouts,
            standing,
            offered: false,
            received: false,
            write_blocked: false,
        }
    }

    fn arm(&mut self, clock: Clock, after: Duration) {
        let now = Instant::now();
        self.clock = clock;
        self.since = now;
        self.deadline.as_mut().reset(now + after);
    }

    /// Whether the connection waits for a request that has not begun, with nothing of
    /// its own left to write: its slot may go to a new connection at the bound.
    fn may_be_shed(&self) -> bool {
        !self.write_blocked
            && match self.clock {
                Clock::Idle => true,
                Clock::Head => !self.received,
                Clock::Busy => false,
            }
    }

    fn withdraw(&mut self) {
        if self.offered {
            self.offered = false;
            self.standing.withdraw();
        }
    }

    /// Between bytes: offers the slot if the connection may be shed, and runs the clock.
    /// `Some` error (the offer taken, or the deadline passed) closes the connection.
    fn wait(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        if self.may_be_shed() {
            self.offered = true;
            if self.standing.offer(self.since, cx.waker()) {
                return Some(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "idle connection closed to make room at HTTP_MAX_CONNECTIONS",
                ));
            }
        } else {
            self.withdraw();
        }
        if self.clock != Clock::Busy && self.deadline.as_mut().poll(cx).is_ready() {
            let what = if self.clock == Clock::Head {
                "request head not received within HTTP_HEADER_READ_TIMEOUT"
            } else {
                "idle longer than HTTP_KEEP_ALIVE_TIMEOUT"
            };
            return Some(io::Error::new(io::ErrorKind::TimedOut, what));
        }
        None
    }

    /// Notes a write's outcome: a full socket withdraws the offer until a write goes out.
    fn wrote<T>(&mut self, result: Poll<T>) -> Poll<T> {
        self.write_blocked = result.is_pending();
        if self.write_blocked {
            self.withdraw();
        }
        result
    }

    /// Follows the service's phase changes since the last read or flush; `true` if any.
    fn follow_phase(&mut self) -> bool {
        let phase = self.phase.load(Ordering::Acquire);
        if phase == self.seen {
            return false;
        }
        self.seen = phase;
        if phase % 2 == 1 {
            self.clock = Clock::Busy;
        } else {
            // Without keep-alive hyper closes after the response; the header deadline
            // bounds a client that does not read it.
            let after = self.timeouts.idle.unwrap_or(self.timeouts.header);
            self.arm(Clock::Idle, after);
        }
        true
    }
}

impl AsyncRead for Deadlines {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.follow_phase();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.received = true;
                    this.withdraw();
                    if this.clock == Clock::Idle {
                        let header = this.timeouts.header;
                        this.arm(Clock::Head, header);
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match this.wait(cx) {
                // Cut only here, where a read has just found nothing in the socket.
                Some(e) => Poll::Ready(Err(e)),
                None => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for Deadlines {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.wrote(result)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.wrote(result)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(Pin::new(&mut this.stream).poll_flush(cx))?;
        // hyper flushes after every write and drops the response body on its write path;
        // with its reader already blocked it may not read again before the next byte
        // arrives, so the idle clock (and the offer) starts here too.
        if this.follow_phase() && this.clock == Clock::Idle && this.wait(cx).is_some() {
            // The read side reports it.
            cx.waker().wake_by_ref();
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn the_connection_limit_leaves_room_for_the_reserved_descriptors() {
        assert_eq!(connection_limit(4096, Some(1024), 94), 930);
        assert_eq!(connection_limit(100, Some(1024), 94), 100);
        assert_eq!(connection_limit(4096, None, 94), 4096);
        assert_eq!(connection_limit(4096, Some(10), 94), 1);
    }
}
