//! The socket's read deadlines, per phase of the connection, and its offer of its slot.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use super::connection::Timeouts;
use super::registry::Standing;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Clock {
    /// Waiting for the rest of a request head: the header deadline runs.
    Head,
    /// A request is being handled: no read deadline.
    Busy,
    /// Between requests, before the first byte of the next: the keep-alive deadline runs.
    Idle,
}

/// The socket with the read deadlines of the diagram in `server`'s documentation. A read
/// that would wait past the running deadline fails with `TimedOut`, which closes the
/// connection. It also makes and withdraws the connection's offer of its slot
/// ([`Standing`]).
pub(super) struct Deadlines {
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
    pub(super) fn new(
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
