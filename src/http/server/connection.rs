//! One connection: hyper's HTTP/1.1 server over the socket with its deadlines, the
//! router as hyper's service, and the markers of when a request is in flight.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tower::Service;
use tower::ServiceExt;
use tower::util::Oneshot;

use super::deadlines::Deadlines;
use super::registry::Standing;

/// The read deadlines of the diagram in `server`'s documentation: the request head's,
/// and the keep-alive one (`None`: no keep-alive).
#[derive(Clone, Copy, Debug)]
pub(super) struct Timeouts {
    pub(super) header: Duration,
    pub(super) idle: Option<Duration>,
}

/// Serves one connection over HTTP/1.1 until it closes, a deadline passes, or shutdown
/// (which lets the request in flight finish and then closes).
pub(super) async fn connection<S>(
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
