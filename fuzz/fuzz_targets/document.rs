//! Fuzz target `document`: the nesting pre-check of client input (`src/nesting.rs`) and,
//! for every input it accepts, the parse that follows it in the server, run on a thread
//! whose stack is a tokio worker's (2 MiB), so an input that would overflow a worker's
//! stack crashes here as it would abort the server.
//!
//! Each input is tried as a GraphQL document (`check_graphql`, then async-graphql's
//! parser; where it refuses, the position its error reports) and as a JSON text
//! (`check_json`, then serde_json). On what parses, the nesting
//! of the parsed tree is measured and must be within `LIMIT`: a pre-check that
//! under-counted (a string, block string or comment it skipped wrongly) fails here even
//! where the stack would have held. A panic anywhere (the parser has `unwrap`s) aborts too.

#![no_main]

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Mutex, OnceLock};

use async_graphql_parser::types::{
    BaseType, Directive, ExecutableDocument, Selection, SelectionSet, Type,
};
use async_graphql_parser::{Positioned, parse_query};
use async_graphql_value::{ConstValue, Value};
use libfuzzer_sys::fuzz_target;

#[path = "../../src/nesting.rs"]
mod nesting;

use nesting::LIMIT;

/// A tokio worker thread's stack (tokio's default `thread_stack_size`).
const WORKER_STACK: usize = 2 * 1024 * 1024;

fuzz_target!(|data: &[u8]| {
    // The server reads queries as UTF-8 text (from JSON strings and query strings).
    if let Ok(text) = std::str::from_utf8(data) {
        match nesting::check_graphql(text) {
            Ok(()) => {
                let text = text.to_owned();
                on_worker_stack(Box::new(move || parse_document(&text)));
            }
            // The refusal's position is computed on the request path too.
            Err(too_deep) => {
                let (line, column) = too_deep.line_column(text);
                assert!(line >= 1 && column >= 1);
            }
        }
    }
    if nesting::check_json(data).is_ok() {
        let bytes = data.to_vec();
        on_worker_stack(Box::new(move || parse_json(&bytes)));
    }
});

fn parse_document(text: &str) {
    if let Ok(document) = parse_query(text) {
        let depth = document_depth(&document);
        assert!(
            depth <= LIMIT,
            "the pre-check let through a document nested {depth} deep"
        );
    }
}

fn parse_json(bytes: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) {
        let depth = json_depth(&value);
        assert!(
            depth <= LIMIT,
            "the pre-check let through JSON nested {depth} deep"
        );
    }
}

// ---- One long-lived thread with a worker's stack, running one input at a time ----

type Job = Box<dyn FnOnce() + Send>;

struct Worker {
    jobs: SyncSender<Job>,
    done: Receiver<()>,
}

fn on_worker_stack(job: Job) {
    static WORKER: OnceLock<Mutex<Worker>> = OnceLock::new();
    let worker = WORKER.get_or_init(|| {
        let (jobs, incoming) = sync_channel::<Job>(0);
        let (finished, done) = sync_channel(0);
        std::thread::Builder::new()
            .name("worker-stack".into())
            .stack_size(WORKER_STACK)
            .spawn(move || {
                for job in incoming {
                    job();
                    if finished.send(()).is_err() {
                        return;
                    }
                }
            })
            .expect("spawn the worker thread");
        Mutex::new(Worker { jobs, done })
    });
    let worker = worker.lock().expect("one input at a time");
    worker.jobs.send(job).expect("the worker thread is alive");
    // A panic on the worker aborts the process (libfuzzer-sys's hook); nothing to join.
    worker
        .done
        .recv()
        .expect("the worker thread finished the input");
}

// ---- Bracket depth of a parsed document: what the text nests, as the parser read it ----

fn document_depth(document: &ExecutableDocument) -> usize {
    let operations = document.operations.iter().map(|(_, op)| {
        let op = &op.node;
        let variables = op
            .variable_definitions
            .iter()
            .map(|v| {
                let v = &v.node;
                type_depth(&v.var_type.node)
                    .max(directives_depth(&v.directives))
                    .max(v.default_value.as_ref().map_or(0, |d| const_depth(&d.node)))
            })
            .max()
            .map_or(0, |deepest| deepest + 1);
        variables
            .max(directives_depth(&op.directives))
            .max(set_depth(&op.selection_set))
    });
    let fragments = document.fragments.values().map(|fragment| {
        directives_depth(&fragment.node.directives).max(set_depth(&fragment.node.selection_set))
    });
    operations.chain(fragments).max().unwrap_or(0)
}

fn set_depth(set: &Positioned<SelectionSet>) -> usize {
    let items = set.node.items.iter().map(|item| match &item.node {
        Selection::Field(field) => {
            let field = &field.node;
            let arguments = field
                .arguments
                .iter()
                .map(|(_, value)| value_depth(&value.node))
                .max()
                .map_or(0, |deepest| deepest + 1);
            let selections = if field.selection_set.node.items.is_empty() {
                0
            } else {
                set_depth(&field.selection_set)
            };
            arguments
                .max(directives_depth(&field.directives))
                .max(selections)
        }
        Selection::FragmentSpread(spread) => directives_depth(&spread.node.directives),
        Selection::InlineFragment(inline) => {
            directives_depth(&inline.node.directives).max(set_depth(&inline.node.selection_set))
        }
    });
    items.max().unwrap_or(0) + 1
}

fn directives_depth(directives: &[Positioned<Directive>]) -> usize {
    directives
        .iter()
        .filter_map(|d| {
            d.node
                .arguments
                .iter()
                .map(|(_, value)| value_depth(&value.node))
                .max()
                .map(|deepest| deepest + 1)
        })
        .max()
        .unwrap_or(0)
}

fn type_depth(ty: &Type) -> usize {
    match &ty.base {
        BaseType::Named(_) => 0,
        BaseType::List(inner) => type_depth(inner) + 1,
    }
}

fn value_depth(value: &Value) -> usize {
    match value {
        Value::List(items) => items.iter().map(value_depth).max().unwrap_or(0) + 1,
        Value::Object(fields) => fields.values().map(value_depth).max().unwrap_or(0) + 1,
        _ => 0,
    }
}

fn const_depth(value: &ConstValue) -> usize {
    match value {
        ConstValue::List(items) => items.iter().map(const_depth).max().unwrap_or(0) + 1,
        ConstValue::Object(fields) => fields.values().map(const_depth).max().unwrap_or(0) + 1,
        _ => 0,
    }
}

fn json_depth(value: &serde_json::Value) -> usize {
    match value {
        serde_json::Value::Array(items) => items.iter().map(json_depth).max().unwrap_or(0) + 1,
        serde_json::Value::Object(fields) => fields.values().map(json_depth).max().unwrap_or(0) + 1,
        _ => 0,
    }
}
