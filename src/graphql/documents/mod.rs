//! `ParsedDocuments`: each distinct query text is parsed, and checked for fragment bombs,
//! once; later requests with the same text reuse the parsed document. A text that has
//! passed validation without variables is not validated again without variables.
//!
//! Front ends send the same few documents over and over (`me` on every page view), and
//! parsing and validating one were large shares of a `me` request: see bench/FINDINGS.md.
//!
//! Both are exact. The parsed document depends only on the text. Validation depends on
//! the schema and its limits (fixed for the life of the process), the text, the name of
//! the operation to run and the variables; so a result is kept per text and operation
//! name, and used only for requests that have no variables. Requests with variables are
//! validated every time: a variable's value can make a document invalid, and keying on
//! the values would keep passwords and tokens in memory.
//!
//! Texts with a string literal (`"`) are never kept: a password or a token written into
//! the document instead of a variable must not outlive its request in the cache. Clients
//! that send such texts are typed by hand (GraphiQL); generated clients use variables.
//!
//! While introspection is off, a document that asks for `__schema` or `__type` is refused
//! as a fragment bomb is, after parsing and before anything else, and never kept: so no
//! kept document or validation result can let one through (see [`super::introspection`]).
//!
//! The cache is bounded in entries and in the length of the texts it keeps, so documents
//! that change on every request (or an attacker sending such) only cost the parse they
//! would have cost anyway.
//!
//! The parsed document also names the operation for metrics ([`Operation`]), so that costs
//! no second parse either.

mod validations;

use std::sync::{Arc, Mutex, MutexGuard};

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Pos, Request, ServerError, ValidationResult};
use hashlink::LruCache;

use super::operations::Operation;
use super::{expansion, introspection};
use crate::nesting;
use validations::{Remember, Validated};

pub use validations::KnownValidations;

/// Parsed documents kept, least recently used dropped first.
const CAPACITY: usize = 128;
/// Longer texts are parsed every time (real clients' operations are far shorter).
const MAX_CACHED_BYTES: usize = 4 * 1024;
/// Validation results kept per document (one per operation name asked for).
const MAX_VALIDATIONS: usize = 4;

type Cache = Arc<Mutex<LruCache<String, Entry>>>;

struct Entry {
    document: ExecutableDocument,
    /// Operation name and the result of validating the document for it, without variables.
    validated: Vec<(Option<String>, ValidationResult)>,
}

/// The cache; one shared by every request of the schema.
#[derive(Clone)]
pub struct ParsedDocuments {
    cache: Cache,
    max_fields: usize,
    /// Whether documents that ask for `__schema` or `__type` are refused.
    refuses_introspection: bool,
}

impl ParsedDocuments {
    /// Refuses documents that expand to more fields than
    /// [`expansion::limit_for_complexity`] allows.
    pub fn for_complexity(max_complexity: usize) -> Self {
        Self {
            cache: Arc::new(Mutex::new(LruCache::new(CAPACITY))),
            max_fields: expansion::limit_for_complexity(max_complexity),
            refuses_introspection: false,
        }
    }

    /// Refuses documents that ask for introspection (`GRAPHQL_INTROSPECTION=false`).
    pub fn refusing_introspection(mut self) -> Self {
        self.refuses_introspection = true;
        self
    }

    fn lock(&self) -> MutexGuard<'_, LruCache<String, Entry>> {
        lock(&self.cache)
    }

    /// Hands `request` its parsed document, from the cache or parsed now, so async-graphql
    /// does not parse it again; its own post-parse checks (recursion depth, directives)
    /// still run on every request, and validation on every request that is not known to
    /// pass it. A text nested too deeply (before it is parsed), a fragment bomb, and while
    /// introspection is off a document that asks for it, are refused as request errors (and
    /// never kept); a document that does not parse is left for async-graphql's parse error.
    ///
    /// Done here rather than in async-graphql extension hooks, which run for every field
    /// of every request once any hook is installed; [`KnownValidations`] is the one hook
    /// that has to be inside.
    ///
    /// Also names the operation for metrics: [`Operation::OTHER`] when the text does not
    /// parse or is refused before it is.
    pub fn prepare(&self, request: Request) -> (Result<Request, ServerError>, Operation) {
        let mut operation = Operation::OTHER;
        let prepared = self.prepare_naming(request, &mut operation);
        (prepared, operation)
    }

    fn prepare_naming(
        &self,
        mut request: Request,
        operation: &mut Operation,
    ) -> Result<Request, ServerError> {
        // Texts that are not kept are not looked up either (hashing them is not free).
        let cacheable = keeps(&request.query);
        let no_variables = request.variables.is_empty();
        let hit = cacheable
            .then(|| {
                let mut cache = self.lock();
                let entry = cache.get(&request.query)?;
                let known = entry
                    .validated
                    .iter()
                    .find(|(name, _)| *name == request.operation_name)
                    .map(|(_, result)| *result);
                *operation = Operation::of(&entry.document, request.operation_name.as_deref());
                Some((entry.document.clone(), known))
            })
            .flatten();
        if let Some((document, known)) = hit {
            request.set_parsed_query(document);
            return Ok(match known {
                Some(result) if no_variables => request.data(Validated(result)),
                None if no_variables => self.remember(request),
                _ => request,
            });
        }
        // Before anything recursive reads the text (cached texts passed this already).
        check_nesting(&request.query)?;
        // `parsed_query` borrows the whole request (it parses on the first call only).
        let operation_name = request.operation_name.take();
        if let Ok(document) = request.parsed_query() {
            *operation = Operation::of(document, operation_name.as_deref());
        }
        request.operation_name = operation_name;
        if let Ok(document) = request.parsed_query() {
            match expansion::expanded_fields(document) {
                Err(cycle) => {
                    return Err(ServerError::new(
                        format!("Cannot spread fragment \"{}\"", cycle.fragment),
                        Some(cycle.at),
                    ));
                }
                Ok(fields) if fields > self.max_fields => {
                    return Err(ServerError::new(
                        format!(
                            "Query is too large: its fragments expand to more than {} fields",
                            self.max_fields
                        ),
                        None,
                    ));
                }
                Ok(_) => {}
            }
            if self.refuses_introspection
                && let Some(field) = introspection::find(document)
            {
                return Err(field.refusal());
            }
            if cacheable {
                let entry = Entry {
                    document: document.clone(),
                    validated: Vec::new(),
                };
                self.lock().insert(request.query.clone(), entry);
                if no_variables {
                    return Ok(self.remember(request));
                }
            }
        }
        Ok(request)
    }

    /// Asks [`KnownValidations`] to record the result of validating `request`.
    fn remember(&self, request: Request) -> Request {
        let remember = Remember::new(
            self.cache.clone(),
            request.query.clone(),
            request.operation_name.clone(),
        );
        request.data(remember)
    }
}

/// Refuses a text nested deeper than [`nesting::LIMIT`] as a request error that points at
/// the first bracket past the limit; async-graphql's parser and validation recurse on
/// nesting without a bound, and a stack overflow would abort the process.
fn check_nesting(query: &str) -> Result<(), ServerError> {
    nesting::check_graphql(query).map_err(|too_deep| {
        let (line, column) = too_deep.line_column(query);
        ServerError::new(
            format!(
                "Query is nested too deeply: brackets `{{`, `[` and `(` may nest at most {} levels",
                nesting::LIMIT
            ),
            Some(Pos { line, column }),
        )
    })
}

/// Whether a text may be kept: short enough, and without a string literal, which could be
/// a secret (a comment with a quote is refused too, which only costs a parse).
fn keeps(query: &str) -> bool {
    query.len() <= MAX_CACHED_BYTES && !query.contains('"')
}

fn lock(cache: &Cache) -> MutexGuard<'_, LruCache<String, Entry>> {
    cache.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests;
