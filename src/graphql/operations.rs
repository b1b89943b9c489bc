//! [`Operation`]: what a GraphQL operation is called in metrics, from a bounded set that
//! the schema fixes, never from the client's text.
//!
//! An operation whose selection is one root field of our schema is named after that field
//! (`me`, `login`, `refreshToken`, ...); one that selects only meta-fields (`__schema`,
//! `__type`, `__typename`) is `introspection`; anything else (several root fields, a
//! fragment at the root, an unknown field, a text that does not parse) is `other`. The
//! names are read once per process from the schema's own SDL, so a field added to the
//! schema gets its label without anyone listing it here.

use std::sync::OnceLock;

use async_graphql::parser::types::{
    ExecutableDocument, OperationDefinition, OperationType, Selection, TypeKind,
    TypeSystemDefinition,
};

/// A label: an index into the process-wide table of names ([`Operation::all`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Operation(u16);

/// The process-wide table: `other`, `introspection`, then the root fields of the schema.
struct Table {
    /// Every label, indexed by [`Operation`].
    labels: Vec<&'static str>,
    /// The Query type's fields and their labels.
    query: Vec<(&'static str, Operation)>,
    /// The Mutation type's fields and their labels.
    mutation: Vec<(&'static str, Operation)>,
}

impl Operation {
    /// Several root fields, an unknown one, or a text that does not parse.
    pub const OTHER: Self = Self(0);
    /// Only `__schema`, `__type` or `__typename` at the root.
    pub const INTROSPECTION: Self = Self(1);

    /// The label's text.
    pub fn as_str(self) -> &'static str {
        table()
            .labels
            .get(usize::from(self.0))
            .copied()
            .unwrap_or("other")
    }

    /// Every label there is, each once: what a metric labelled by operation can hold.
    pub fn all() -> impl Iterator<Item = Self> {
        (0..table().labels.len()).filter_map(|i| u16::try_from(i).ok().map(Self))
    }

    /// The position of this label in [`all`](Self::all), for tables indexed by label.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    /// The operation `document` runs for `operation_name` (as execution chooses it: by
    /// name, or the only one).
    pub fn of(document: &ExecutableDocument, operation_name: Option<&str>) -> Self {
        let mut operations = document.operations.iter();
        let selected = match operation_name {
            Some(name) => operations
                .find(|(n, _)| n.map(|n| n.as_str()) == Some(name))
                .map(|(_, op)| op),
            None => match (operations.next(), operations.next()) {
                (Some((_, op)), None) => Some(op),
                _ => None,
            },
        };
        selected.map_or(Self::OTHER, |op| Self::of_definition(&op.node))
    }

    fn of_definition(operation: &OperationDefinition) -> Self {
        let items = &operation.selection_set.node.items;
        fn field_name(item: &Selection) -> Option<&str> {
            match item {
                Selection::Field(field) => Some(field.node.name.node.as_str()),
                _ => None,
            }
        }
        if !items.is_empty()
            && items
                .iter()
                .all(|i| field_name(&i.node).is_some_and(|n| n.starts_with("__")))
        {
            return Self::INTROSPECTION;
        }
        let [only] = items.as_slice() else {
            return Self::OTHER;
        };
        let Some(name) = field_name(&only.node) else {
            return Self::OTHER;
        };
        let table = table();
        let fields = match operation.ty {
            OperationType::Query => &table.query,
            OperationType::Mutation => &table.mutation,
            OperationType::Subscription => return Self::OTHER,
        };
        fields
            .iter()
            .find(|(field, _)| *field == name)
            .map_or(Self::OTHER, |(_, op)| *op)
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Built on first use from [`super::sdl`]: the names live as long as the process (a few
/// hundred bytes, once).
fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| Table::from_sdl(&super::sdl()))
}

impl Table {
    fn from_sdl(sdl: &str) -> Self {
        let mut table = Self {
            labels: vec!["other", "introspection"],
            query: Vec::new(),
            mutation: Vec::new(),
        };
        // Our own SDL always parses; were it not to, every operation would be `other`.
        let Ok(document) = async_graphql::parser::parse_schema(sdl) else {
            return table;
        };
        let (mut query_type, mut mutation_type) = ("Query".to_owned(), "Mutation".to_owned());
        for definition in &document.definitions {
            if let TypeSystemDefinition::Schema(schema) = definition {
                if let Some(name) = &schema.node.query {
                    query_type = name.node.to_string();
                }
                if let Some(name) = &schema.node.mutation {
                    mutation_type = name.node.to_string();
                }
            }
        }
        for definition in &document.definitions {
            let TypeSystemDefinition::Type(ty) = definition else {
                continue;
            };
            let TypeKind::Object(object) = &ty.node.kind else {
                continue;
            };
            let name = ty.node.name.node.as_str();
            let is_query = name == query_type;
            if !is_query && name != mutation_type {
                continue;
            }
            for field in &object.fields {
                let field = field.node.name.node.as_str();
                let label = table.intern(field);
                if is_query {
                    table.query.push((label.0, label.1));
                } else {
                    table.mutation.push((label.0, label.1));
                }
            }
        }
        table
    }

    /// The label for `name`, added to the table if new.
    fn intern(&mut self, name: &str) -> (&'static str, Operation) {
        if let Some(i) = self.labels.iter().position(|l| *l == name) {
            return (self.labels[i], Operation(u16::try_from(i).unwrap_or(0)));
        }
        let label: &'static str = Box::leak(name.to_owned().into_boxed_str());
        self.labels.push(label);
        let index = u16::try_from(self.labels.len() - 1).unwrap_or(0);
        (label, Operation(index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(query: &str, name: Option<&str>) -> &'static str {
        let document = async_graphql::parser::parse_query(query).unwrap();
        Operation::of(&document, name).as_str()
    }

    #[test]
    fn one_root_field_of_the_schema_names_the_operation() {
        assert_eq!(label("{ me { id } }", None), "me");
        assert_eq!(label("query Mine { profile: me { id } }", None), "me");
        assert_eq!(
            label("mutation { login(input: {}) { accessToken } }", None),
            "login"
        );
        assert_eq!(
            label(
                "mutation M { refreshToken(refreshToken: $t) { accessToken } }",
                None
            ),
            "refreshToken"
        );
    }

    #[test]
    fn the_named_operation_is_the_one_labelled() {
        let two = "query A { me { id } } mutation B { logout }";
        assert_eq!(label(two, Some("A")), "me");
        assert_eq!(label(two, Some("B")), "logout");
        assert_eq!(label(two, Some("C")), "other");
        assert_eq!(label(two, None), "other");
    }

    #[test]
    fn meta_fields_alone_are_introspection() {
        assert_eq!(
            label("{ __schema { types { name } } }", None),
            "introspection"
        );
        assert_eq!(
            label("{ __type(name: \"User\") { name } __typename }", None),
            "introspection"
        );
        assert_eq!(label("{ __typename me { id } }", None), "other");
    }

    #[test]
    fn anything_else_is_other_and_never_the_clients_text() {
        assert_eq!(label("{ me { id } again: me { id } }", None), "other");
        assert_eq!(label("{ secretToken123 }", None), "other");
        assert_eq!(
            label("{ ...F } fragment F on Query { me { id } }", None),
            "other"
        );
        // A mutation's field asked for as a query is not that mutation.
        assert_eq!(label("{ login(input: {}) { accessToken } }", None), "other");
        assert_eq!(label("subscription { me { id } }", None), "other");
    }

    #[test]
    fn the_labels_are_the_schemas_root_fields_and_two_more() {
        let labels: Vec<&str> = Operation::all().map(Operation::as_str).collect();
        assert_eq!(labels[..2], ["other", "introspection"]);
        for field in ["me", "register", "login", "refreshToken", "logout"] {
            assert_eq!(labels.iter().filter(|l| **l == field).count(), 1, "{field}");
        }
        for (i, op) in Operation::all().enumerate() {
            assert_eq!(op.index(), i);
        }
    }
}
