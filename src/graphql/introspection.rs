//! The introspection switch (`GRAPHQL_INTROSPECTION`): with it off, a document that asks
//! for `__schema` or `__type` is refused with a request error that says so, and the schema
//! gives no "Did you mean" hints.
//!
//! async-graphql's own switch (`disable_introspection`) is not enough on its own: the
//! schema keeps both fields for validation, and execution then answers them with `null`
//! and no error (`{"data":{"__schema":null}}`), which tells a client nothing. So
//! [`super::documents::ParsedDocuments`] refuses such a document where it refuses fragment
//! bombs, after parsing and before validation, and never keeps it: a text the cache holds
//! (and any validation it knows) is one that asks for neither field. async-graphql's switch
//! stays on behind it. `__typename` is not introspection of the schema and keeps working.
//! `auth-server schema` prints the SDL from a schema of its own, so the committed
//! `schema.graphql` is the same whatever this switch says.

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ObjectType, Pos, SchemaBuilder, ServerError, SubscriptionType};

/// The fields that read the schema (async-graphql adds them to the query root).
const FIELDS: [&str; 2] = ["__schema", "__type"];

/// Turns introspection off in the schema `builder` makes, and field-name suggestions with
/// it: "Unknown field "emai" on type "User". Did you mean "email"?" would let a client
/// rebuild the schema one guess at a time.
pub fn disable<Q, M, S>(builder: SchemaBuilder<Q, M, S>) -> SchemaBuilder<Q, M, S>
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    builder.disable_introspection().disable_suggestions()
}

/// A field of a document that reads the schema, and where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchemaField {
    name: &'static str,
    pos: Pos,
}

impl SchemaField {
    /// The request error a client gets while introspection is off.
    pub fn refusal(self) -> ServerError {
        ServerError::new(
            format!(
                "GraphQL introspection is disabled on this server, but the query asks for \"{}\".",
                self.name
            ),
            Some(self.pos),
        )
    }
}

/// A field named `__schema` or `__type` anywhere in `document` (every operation and every
/// fragment, as a validation rule sees the whole document), if there is one. Walks with a
/// stack of its own, so no nesting depth can overflow the thread's.
pub fn find(document: &ExecutableDocument) -> Option<SchemaField> {
    let mut pending: Vec<&SelectionSet> = document
        .operations
        .iter()
        .map(|(_, op)| &op.node.selection_set.node)
        .chain(
            document
                .fragments
                .values()
                .map(|fragment| &fragment.node.selection_set.node),
        )
        .collect();
    while let Some(set) = pending.pop() {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    let name = field.node.name.node.as_str();
                    if let Some(name) = FIELDS.into_iter().find(|f| *f == name) {
                        return Some(SchemaField {
                            name,
                            pos: field.pos,
                        });
                    }
                    pending.push(&field.node.selection_set.node);
                }
                Selection::InlineFragment(inline) => pending.push(&inline.node.selection_set.node),
                // The fragment it names is walked as a fragment of the document.
                Selection::FragmentSpread(_) => {}
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Request, Response, Schema};

    use async_graphql::parser::types::DocumentOperations;

    use super::super::documents::{KnownValidations, ParsedDocuments};
    use super::*;

    struct Query;

    #[Object]
    impl Query {
        async fn value(&self) -> i32 {
            1
        }
    }

    fn field(query: &str) -> Option<&'static str> {
        let document = async_graphql::parser::parse_query(query).expect("parses");
        find(&document).map(|f| f.name)
    }

    #[test]
    fn schema_fields_are_found_wherever_they_are_and_only_there() {
        assert_eq!(field("{ __schema { types { name } } }"), Some("__schema"));
        assert_eq!(
            field("{ t: __type(name: \"Query\") { name } }"),
            Some("__type")
        );
        assert_eq!(
            field("query A { value } query B { ... on Query { __schema { __typename } } }"),
            Some("__schema")
        );
        assert_eq!(
            field("{ ...F } fragment F on Query { value { __type(name: \"X\") { name } } }"),
            Some("__type")
        );
        assert_eq!(field("{ __typename value { __typename } }"), None);
        assert_eq!(field("{ schema: value type: value }"), None);
    }

    #[test]
    fn the_walk_does_not_recurse() {
        // Deeper than a thread's stack would take recursively (the parser refuses such a
        // document first; the walk does not rely on it).
        let mut document = async_graphql::parser::parse_query("{ a }").expect("parses");
        let DocumentOperations::Single(op) = &mut document.operations else {
            unreachable!("one anonymous operation")
        };
        let leaf = op.node.selection_set.node.items[0].clone();
        let mut set = SelectionSet {
            items: vec![leaf.clone()],
        };
        for _ in 0..50_000 {
            let mut wrapper = leaf.clone();
            if let Selection::Field(field) = &mut wrapper.node {
                field.node.selection_set.node = set;
            }
            set = SelectionSet {
                items: vec![wrapper],
            };
        }
        op.node.selection_set.node = set;
        assert_eq!(find(&document), None);
        // Dropping a nest this deep recurses (in `Drop`), so it is leaked instead.
        std::mem::forget(document);
    }

    /// A schema with introspection off behind the document cache, as `Executor` runs them.
    struct Harness {
        schema: Schema<Query, EmptyMutation, EmptySubscription>,
        documents: ParsedDocuments,
    }

    impl Harness {
        fn new() -> Self {
            let builder = Schema::build(Query, EmptyMutation, EmptySubscription);
            Self {
                schema: disable(builder).extension(KnownValidations).finish(),
                documents: ParsedDocuments::for_complexity(500).refusing_introspection(),
            }
        }

        async fn execute(&self, request: impl Into<Request>) -> Response {
            match self.documents.prepare(request.into()).0 {
                Ok(request) => self.schema.execute(request).await,
                Err(error) => Response::from_errors(vec![error]),
            }
        }
    }

    #[tokio::test]
    async fn introspection_is_refused_as_a_request_error_every_time() {
        let harness = Harness::new();
        for _ in 0..3 {
            for (name, query) in [
                ("__schema", "{ __schema { queryType { name } } }"),
                ("__type", "{ __type(name: \"Query\") { name } }"),
                (
                    "__schema",
                    "{ ...F } fragment F on Query { __schema { types { name } } }",
                ),
            ] {
                let response = harness.execute(query).await;
                assert_eq!(response.data, async_graphql::Value::Null, "{query}");
                assert_eq!(response.errors.len(), 1, "{query}: {:?}", response.errors);
                let error = &response.errors[0];
                assert!(
                    error.message.contains("introspection is disabled")
                        && error.message.contains(name),
                    "{query}: {}",
                    error.message
                );
                assert!(error.path.is_empty(), "a request error");
            }
        }
    }

    #[tokio::test]
    async fn typename_and_ordinary_fields_still_run_without_suggestions() {
        let harness = Harness::new();
        for _ in 0..2 {
            let response = harness.execute("{ __typename value }").await;
            assert_eq!(response.errors, vec![]);
            assert_eq!(
                response.data.into_json().unwrap(),
                serde_json::json!({"__typename": "Query", "value": 1})
            );
        }
        let response = harness.execute("{ valu }").await;
        assert_eq!(
            response.errors[0].message,
            "Unknown field \"valu\" on type \"Query\"."
        );
    }

    #[tokio::test]
    async fn without_the_switch_async_graphql_answers_introspection_and_suggests() {
        let schema = Schema::build(Query, EmptyMutation, EmptySubscription).finish();
        let response = schema.execute("{ valu }").await;
        assert!(
            response.errors[0]
                .message
                .contains("Did you mean \"value\""),
            "{:?}",
            response.errors
        );
        let response = schema.execute("{ __schema { queryType { name } } }").await;
        assert_eq!(response.errors, vec![]);
        // Its own switch alone answers null without an error: why the document check exists.
        let builder = Schema::build(Query, EmptyMutation, EmptySubscription);
        let response = disable(builder)
            .finish()
            .execute("{ __schema { queryType { name } } }")
            .await;
        assert_eq!(response.errors, vec![]);
        assert_eq!(
            response.data.into_json().unwrap(),
            serde_json::json!({"__schema": null})
        );
    }
}
