//! `ParsedDocuments`: each distinct query text is parsed, and checked for fragment bombs,
//! once; later requests with the same text reuse the parsed document.
//!
//! Front ends send the same few documents over and over (`me` on every page view), and
//! parsing one with async-graphql's pest grammar cost more than everything else a `me`
//! request does outside the database (see `bench/FINDINGS.md`). The parsed document only
//! depends on the text, so a cache keyed by the text is exact; validation still runs on
//! every request (it depends on the variables). The cache is bounded in entries and in the
//! length of the texts it keeps, so documents that change on every request (or an attacker
//! sending such) only cost the parse they would have cost anyway.

use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Request, ServerError, ServerResult};
use hashlink::LruCache;

use super::expansion;

/// Parsed documents kept, least recently used dropped first.
const CAPACITY: usize = 128;
/// Longer texts are parsed every time (real clients' operations are far shorter).
const MAX_CACHED_BYTES: usize = 4 * 1024;

/// The extension; one cache shared by every request of the schema.
#[derive(Clone)]
pub struct ParsedDocuments {
    cache: Arc<Mutex<LruCache<String, ExecutableDocument>>>,
    max_fields: usize,
}

impl ParsedDocuments {
    /// Refuses documents that expand to more fields than
    /// [`expansion::limit_for_complexity`] allows.
    pub fn for_complexity(max_complexity: usize) -> Self {
        Self {
            cache: Arc::new(Mutex::new(LruCache::new(CAPACITY))),
            max_fields: expansion::limit_for_complexity(max_complexity),
        }
    }

    fn cached(&self, query: &str) -> Option<ExecutableDocument> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(query).cloned()
    }

    fn keep(&self, query: String, document: ExecutableDocument) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.insert(query, document);
    }
}

impl ExtensionFactory for ParsedDocuments {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(self.clone())
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for ParsedDocuments {
    /// Runs before async-graphql's own post-parse checks (its recursion-depth check expands
    /// spreads too). The document is handed on in the request, so it is not parsed again.
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        // Texts too long to be kept are not looked up either (hashing them is not free).
        let cacheable = request.query.len() <= MAX_CACHED_BYTES;
        if let Some(document) = cacheable.then(|| self.cached(&request.query)).flatten() {
            request.set_parsed_query(document);
        } else {
            // A document that does not parse is left for the usual parse error.
            if let Ok(document) = request.parsed_query() {
                if expansion::expanded_fields(document) > self.max_fields {
                    return Err(ServerError::new(
                        format!(
                            "Query is too large: its fragments expand to more than {} fields",
                            self.max_fields
                        ),
                        None,
                    ));
                }
                if cacheable {
                    let document = document.clone();
                    self.keep(request.query.clone(), document);
                }
            }
        }
        next.run(ctx, request).await
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};

    use super::*;

    struct Query;

    #[Object]
    impl Query {
        async fn value(&self, add: Option<i32>) -> i32 {
            1 + add.unwrap_or(0)
        }
    }

    fn schema(documents: &ParsedDocuments) -> Schema<Query, EmptyMutation, EmptySubscription> {
        Schema::build(Query, EmptyMutation, EmptySubscription)
            .extension(documents.clone())
            .finish()
    }

    fn cached(documents: &ParsedDocuments) -> usize {
        documents.cache.lock().unwrap().len()
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
    }
}
