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
//! ([`registry::Registry::shed`]). A connection that has received a byte of a request
//! head, has a request or response in flight, or whose last write found the socket full
//! (a response not yet read by the client), is never closed for room: the loop then
//! waits for a slot, looking again every [`SHED_RECHECK`]. Each connection publishes
//! whether it may be shed in its own atomic word, written by its own task when its
//! reader blocks; the loop alone keeps the list of them, so a request takes no lock and
//! touches nothing another connection writes.
//!
//! One file per job: `limits` (descriptors), `registry` (who may be shed), `connection`
//! (hyper and the service wrappers that mark a request in flight), `deadlines` (the
//! socket's clock and its offer of the slot).

mod connection;
mod deadlines;
mod limits;
mod registry;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::response::Response;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tower::Service;

use connection::{Timeouts, connection};
use limits::RESERVED_DESCRIPTORS;
pub use limits::{connection_limit, raise_descriptor_limit};
use registry::Registry;

use crate::config::HttpSettings;

/// How long the accept loop pauses after an error such as `EMFILE` (out of descriptors)
/// before trying again: it never spins on a persistent error.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(250);
/// At most one "connection limit reached" warning per this period.
const FULL_WARNING_EVERY: Duration = Duration::from_secs(60);
/// While a connection waits for a slot and none could be freed, how often the loop looks
/// again for connections that have become idle since (or that took back their offer).
const SHED_RECHECK: Duration = Duration::from_millis(100);

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

/// Errors of one connection that never reached `accept`'s caller: try the next one.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
