//! `ParsedDocuments`: each distinct query text is parsed, and checked for fragment bombs,
//! once; later requests with the same text reuse the parsed document. A text that has
//! passed validation without variables is not validated again without variables.
//!
//! Front ends send the same few documents over and over (`me` on every page view).
//! Parsing one with async-graphql's pest grammar cost more than everything else a `me`
//! request does outside the database, and validating it was then a quarter of the
//! instructions of a `me` request (see `bench/FINDINGS.md`).
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

use std::sync::{Arc, Mutex, MutexGuard};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextValidation};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Pos, Request, ServerError, ValidationResult};
use hashlink::LruCache;

use super::{expansion, introspection};
use crate::nesting;

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
    pub fn prepare(&self, mut request: Request) -> Result<Request, ServerError> {
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
        let remember = Remember {
            cache: self.cache.clone(),
            query: request.query.clone(),
            operation: request.operation_name.clone(),
        };
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

/// Request data: the result of validating this request's text and operation without
/// variables, known from an earlier request.
struct Validated(ValidationResult);

/// Request data: where to record the result of validating this request.
struct Remember {
    cache: Cache,
    query: String,
    operation: Option<String>,
}

impl Remember {
    fn record(&self, result: ValidationResult) {
        let mut cache = lock(&self.cache);
        // The entry may have been evicted meanwhile; then there is nothing to add to.
        if let Some(entry) = cache.get_mut(&self.query) {
            let known = entry.validated.iter().any(|(n, _)| *n == self.operation);
            if !known && entry.validated.len() < MAX_VALIDATIONS {
                entry.validated.push((self.operation.clone(), result));
            }
        }
    }
}

/// The async-graphql extension of [`ParsedDocuments`]: validation is skipped for a request
/// whose result is known, and recorded for one that asks for it. Only passing results are
/// kept; a document that fails validation is validated (and fails) every time.
pub struct KnownValidations;

impl ExtensionFactory for KnownValidations {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(KnownValidations)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for KnownValidations {
    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        if let Some(Validated(result)) = ctx.data_opt::<Validated>() {
            return Ok(*result);
        }
        let result = next.run(ctx).await;
        if let (Ok(result), Some(remember)) = (&result, ctx.data_opt::<Remember>()) {
            remember.record(*result);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Response, Schema};

    use super::*;

    struct Query;

    #[Object]
    impl Query {
        async fn value(&self, add: Option<i32>) -> i32 {
            1 + add.unwrap_or(0)
        }
    }

    /// The schema behind the cache, as `Executor` runs them.
    struct Harness {
        schema: Schema<Query, EmptyMutation, EmptySubscription>,
        documents: ParsedDocuments,
    }

    impl Harness {
        async fn execute(&self, request: impl Into<Request>) -> Response {
            match self.documents.prepare(request.into()) {
                Ok(request) => self.schema.execute(request).await,
                Err(error) => Response::from_errors(vec![error]),
            }
        }
    }

    fn schema(documents: &ParsedDocuments) -> Harness {
        Harness {
            schema: Schema::build(Query, EmptyMutation, EmptySubscription)
                .extension(KnownValidations)
                .finish(),
            documents: documents.clone(),
        }
    }

    fn cached(documents: &ParsedDocuments) -> usize {
        documents.cache.lock().unwrap().len()
    }

    /// The operation names `query` is known to validate for without variables.
    fn known(documents: &ParsedDocuments, query: &str) -> Vec<Option<String>> {
        documents
            .lock()
            .peek(query)
            .map(|entry| entry.validated.iter().map(|(n, _)| n.clone()).collect())
            .unwrap_or_default()
    }

    /// Whether `prepare` hands `request` a known validation result.
    fn skips_validation(documents: &ParsedDocuments, request: Request) -> bool {
        let prepared = documents.prepare(request).unwrap();
        prepared
            .data
            .contains_key(&std::any::TypeId::of::<Validated>())
    }

    #[tokio::test]
    async fn a_validation_is_reused_only_without_variables_and_for_its_operation() {
        let documents = ParsedDocuments::for_complexity(500);
        let schema = schema(&documents);
        let query = "query A($n: Int) { value(add: $n) } query B { value }";
        let op = |name: &str| Request::new(query).operation_name(name);
        assert!(!skips_validation(&documents, op("A")), "not validated yet");
        for name in ["A", "B", "A"] {
            let response = schema.execute(op(name)).await;
            assert_eq!(response.errors, vec![], "{name}");
            assert_eq!(response.data.into_json().unwrap()["value"], 1);
        }
        assert_eq!(
            known(&documents, query),
            vec![Some("A".to_owned()), Some("B".to_owned())]
        );
        assert!(skips_validation(&documents, op("A")));
        assert!(
            !skips_validation(&documents, Request::new(query)),
            "no name"
        );

        // With variables the known result is not used: a bad value is still refused
        // before anything runs, and a good one still counts.
        let with = |n: serde_json::Value| {
            op("A").variables(async_graphql::Variables::from_json(
                serde_json::json!({ "n": n }),
            ))
        };
        assert!(!skips_validation(&documents, with(serde_json::json!(2))));
        let refused = schema.execute(with(serde_json::json!("two"))).await;
        assert_eq!(refused.data, async_graphql::Value::Null);
        assert!(
            refused.errors[0].message.contains("Invalid value"),
            "{:?}",
            refused.errors
        );
        let response = schema.execute(with(serde_json::json!(2))).await;
        assert_eq!(response.data.into_json().unwrap()["value"], 3);
    }

    #[tokio::test]
    async fn a_document_that_fails_validation_fails_every_time() {
        let documents = ParsedDocuments::for_complexity(500);
        let schema = schema(&documents);
        for _ in 0..3 {
            let response = schema.execute("{ value nope }").await;
            assert!(response.errors[0].message.contains("Unknown field"));
        }
        assert_eq!(
            known(&documents, "{ value nope }"),
            Vec::<Option<String>>::new()
        );
        assert!(!skips_validation(
            &documents,
            Request::new("{ value nope }")
        ));
    }

    #[tokio::test]
    async fn a_document_is_parsed_once_and_reused_with_other_variables() {
        let documents = ParsedDocuments::for_complexity(500);
        let schema = schema(&documents);
        let query = "query($n: Int) { value(add: $n) }";
        for n in 0..3 {
            let request = Request::new(query).variables(async_graphql::Variables::from_json(
                serde_json::json!({ "n": n }),
            ));
            let response = schema.execute(request).await;
            assert_eq!(
                response.data.into_json().unwrap(),
                serde_json::json!({ "value": 1 + n })
            );
            assert_eq!(cached(&documents), 1);
        }
    }

    #[tokio::test]
    async fn errors_bombs_and_long_documents_are_not_kept() {
        let documents = ParsedDocuments::for_complexity(500);
        let schema = schema(&documents);
        // A syntax error and a validation error still answer as without the cache.
        let syntax = schema.execute("{ value(").await;
        assert!(
            syntax.errors[0].message.contains("expected"),
            "{:?}",
            syntax.errors
        );
        for _ in 0..2 {
            let unknown = schema.execute("{ nope }").await;
            assert!(unknown.errors[0].message.contains("Unknown field"));
        }
        assert_eq!(cached(&documents), 1, "only the document that parsed");
        // A fragment bomb is refused every time, and never kept.
        let bomb = expansion::tests::bomb(30);
        for _ in 0..2 {
            let refused = schema.execute(bomb.as_str()).await;
            assert!(refused.errors[0].message.contains("Query is too large"));
        }
        assert_eq!(cached(&documents), 1);
        // Past MAX_CACHED_BYTES a document runs but is not kept.
        let long = format!("{{ value {} }}", " ".repeat(MAX_CACHED_BYTES));
        assert_eq!(schema.execute(long.as_str()).await.errors, vec![]);
        assert_eq!(cached(&documents), 1);
        // Nor is one with a string literal, which could be a secret.
        let literal = r#"{ value __type(name: "Query") { name } }"#;
        assert_eq!(schema.execute(literal).await.errors, vec![]);
        assert_eq!(cached(&documents), 1);
    }
}
