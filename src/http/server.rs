//! The accept loop: a bound on open connections, the header-read and keep-alive timeouts,
//! the descriptor limit, and graceful shutdown. It replaces `axum::serve`, which has
//! none of the first three.
//!
//! A connection's clock, per phase (one timer per connection, reset at phase changes):
//!
//! ```text
//!  accept ──► head ──(request head parsed)──► busy ──(response ready)──► idle
//!              ▲  HTTP_HEADER_READ_TIMEOUT       no read deadline        │ HTTP_KEEP_ALIVE_TIMEOUT
//!              └──────────────(first byte of the next request)───────────┘
//! ```
//!
//! A deadline that passes closes the connection. The request itself (body included) is
//! bounded by the router's request timeout.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, Sleep};
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
    let (shutdown, shutting_down) = watch::channel(false);
    let mut stop = pin!(stop);
    let mut last_full_warning: Option<Instant> = None;
    let mut accept_failing = false;
    loop {
        if slots.available_permits() == 0
            && last_full_warning.is_none_or(|t| t.elapsed() >= FULL_WARNING_EVERY)
        {
            tracing::warn!(
                limit,
                "connection limit reached: new connections wait in the listen backlog until \
                 one closes (HTTP_MAX_CONNECTIONS)"
            );
            last_full_warning = Some(Instant::now());
        }
        let slot = tokio::select! {
            biased;
            () = &mut stop => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break, // never closed
            },
        };
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
                    drop(slot);
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
        let app = app.clone();
        let shutting_down = shutting_down.clone();
        tokio::spawn(async move {
            connection(stream, peer, app, timeouts, shutting_down).await;
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
    mut shutting_down: watch::Receiver<bool>,
) where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    // Odd while a request is being handled, even between requests.
    let phase = Arc::new(AtomicU64::new(0));
    let io = TokioIo::new(Deadlines::new(stream, phase.clone(), timeouts));
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
    /// A response future that marks the connection idle again when it completes.
    struct Finished<F> {
        #[pin]
        inner: F,
        phase: Option<Arc<AtomicU64>>,
    }
}

impl<F: Future> Future for Finished<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let output = ready!(this.inner.poll(cx));
        if let Some(phase) = this.phase.take() {
            phase.fetch_add(1, Ordering::Release);
        }
        Poll::Ready(output)
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
struct Deadlines {
    stream: TcpStream,
    phase: Arc<AtomicU64>,
    seen: u64,
    clock: Clock,
    deadline: Pin<Box<Sleep>>,
    timeouts: Timeouts,
}

impl Deadlines {
    fn new(stream: TcpStream, phase: Arc<AtomicU64>, timeouts: Timeouts) -> Self {
        Self {
            stream,
            phase,
            seen: 0,
            clock: Clock::Head,
            deadline: Box::pin(tokio::time::sleep(timeouts.header)),
            timeouts,
        }
    }

    fn arm(&mut self, clock: Clock, after: Duration) {
        self.clock = clock;
        self.deadline.as_mut().reset(Instant::now() + after);
    }

    /// Follows the service's phase changes since the last read.
    fn follow_phase(&mut self) {
        let phase = self.phase.load(Ordering::Acquire);
        if phase == self.seen {
            return;
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
                if this.clock == Clock::Idle && buf.filled().len() > before {
                    let header = this.timeouts.header;
                    this.arm(Clock::Head, header);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if this.clock != Clock::Busy && this.deadline.as_mut().poll(cx).is_ready() {
                    let what = if this.clock == Clock::Head {
                        "request head not received within HTTP_HEADER_READ_TIMEOUT"
                    } else {
                        "idle longer than HTTP_KEEP_ALIVE_TIMEOUT"
                    };
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, what)));
                }
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for Deadlines {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_limit_leaves_room_for_the_reserved_descriptors() {
        assert_eq!(connection_limit(4096, Some(1024), 94), 930);
        assert_eq!(connection_limit(100, Some(1024), 94), 100);
        assert_eq!(connection_limit(4096, None, 94), 4096);
        assert_eq!(connection_limit(4096, Some(10), 94), 1);
    }
}
