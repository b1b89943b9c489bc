//! The document cache and its validation hook, against a schema of one field.

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
        match self.documents.prepare(request.into()).0 {
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
    let prepared = documents.prepare(request).0.unwrap();
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
