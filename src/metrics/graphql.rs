//! [`GraphqlMetrics`]: requests and latency by GraphQL operation, through handles taken
//! once per label, so recording one is an index and two atomic updates.

use std::sync::Arc;
use std::time::Duration;

use metrics::{Counter, Histogram};

use super::{GRAPHQL_DURATION, GRAPHQL_REQUESTS};
use crate::graphql::Operation;

/// The handles of one operation label.
struct Handles {
    ok: Counter,
    error: Counter,
    duration: Histogram,
}

/// Per-operation handles, indexed by [`Operation::index`]; empty when metrics are off.
#[derive(Clone)]
pub struct GraphqlMetrics {
    by_operation: Arc<[Handles]>,
}

impl GraphqlMetrics {
    /// Records nothing.
    pub fn off() -> Self {
        Self {
            by_operation: Arc::new([]),
        }
    }

    /// Registers every label with the installed recorder, each at zero: a counter that
    /// exists from the start lets Prometheus see its first increase.
    pub(super) fn on() -> Self {
        let handles = Operation::all()
            .map(|op| {
                let operation = op.as_str();
                Handles {
                    ok: metrics::counter!(GRAPHQL_REQUESTS, "operation" => operation, "outcome" => "ok"),
                    error: metrics::counter!(GRAPHQL_REQUESTS, "operation" => operation, "outcome" => "error"),
                    duration: metrics::histogram!(GRAPHQL_DURATION, "operation" => operation),
                }
            })
            .collect::<Vec<_>>();
        for handles in &handles {
            handles.ok.increment(0);
            handles.error.increment(0);
        }
        Self {
            by_operation: handles.into(),
        }
    }

    /// Whether operations are recorded (the handler reads the clock only then).
    pub fn is_on(&self) -> bool {
        !self.by_operation.is_empty()
    }

    /// One operation answered, with or without errors, in `elapsed`.
    pub fn record(&self, operation: Operation, ok: bool, elapsed: Duration) {
        let Some(handles) = self.by_operation.get(operation.index()) else {
            return;
        };
        if ok {
            handles.ok.increment(1);
        } else {
            handles.error.increment(1);
        }
        handles.duration.record(elapsed.as_secs_f64());
    }
}
