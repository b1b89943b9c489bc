//! How many fields a document expands to: documents whose fragment spreads expand to more
//! fields than any real client sends are refused (by [`super::documents`]) before
//! async-graphql checks or validates them.
//!
//! async-graphql's recursion-depth check and its depth and complexity validators expand
//! every fragment spread where it occurs, so a document of 25 fragments each spreading the
//! previous one twice (under 1 KiB) costs 2^25 visits: seconds to minutes of CPU per
//! request. This counts the expanded size once per fragment (linear in the document) and
//! refuses such a bomb first.

use std::collections::HashMap;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

/// Fragment chains nested deeper than this are refused outright (async-graphql itself
/// refuses documents nested deeper than 32).
const MAX_NESTING: usize = 64;

/// The most fields a document may expand to: four times the complexity limit (at least
/// 2,000). Far above what the complexity check lets run anyway (GraphiQL's full
/// introspection query expands to a few hundred fields), far below what makes the checks
/// after it slow.
pub fn limit_for_complexity(max_complexity: usize) -> usize {
    max_complexity.max(500).saturating_mul(4)
}

/// The number of fields of every operation with each fragment spread replaced by its
/// fragment, saturating; each fragment is counted once.
pub fn expanded_fields(document: &ExecutableDocument) -> usize {
    let mut sizes = HashMap::new();
    document
        .operations
        .iter()
        .map(|(_, op)| size_of(&op.node.selection_set.node, document, &mut sizes, 0))
        .fold(0, usize::saturating_add)
}

fn size_of<'a>(
    set: &'a SelectionSet,
    document: &'a ExecutableDocument,
    sizes: &mut HashMap<&'a str, usize>,
    nesting: usize,
) -> usize {
    if nesting > MAX_NESTING {
        return usize::MAX;
    }
    set.items.iter().fold(0usize, |total, item| {
        let size = match &item.node {
            Selection::Field(field) => 1usize.saturating_add(size_of(
                &field.node.selection_set.node,
                document,
                sizes,
                nesting + 1,
            )),
            Selection::InlineFragment(inline) => size_of(
                &inline.node.selection_set.node,
                document,
                sizes,
                nesting + 1,
            ),
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                match sizes.get(name) {
                    Some(&known) => known,
                    None => {
                        // A cycle counts as nothing here; validation refuses it.
                        sizes.insert(name, 0);
                        let size = document
                            .fragments
                            .get(&spread.node.fragment_name.node)
                            .map_or(0, |fragment| {
                                size_of(
                                    &fragment.node.selection_set.node,
                                    document,
                                    sizes,
                                    nesting + 1,
                                )
                            });
                        sizes.insert(name, size);
                        size
                    }
                }
            }
        };
        total.saturating_add(size)
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn expanded(query: &str) -> usize {
        expanded_fields(&async_graphql::parser::parse_query(query).expect("parses"))
    }

    /// `levels` fragments, each spreading the previous one twice.
    pub(in crate::graphql) fn bomb(levels: usize) -> String {
        let mut doc = format!(
            "{{ ...F{} }} fragment F0 on Query {{ __typename }}",
            levels - 1
        );
        for i in 1..levels {
            doc.push_str(&format!(
                " fragment F{i} on Query {{ ...F{} ...F{} }}",
                i - 1,
                i - 1
            ));
        }
        doc
    }

    #[test]
    fn fields_are_counted_through_fragments_and_inline_fragments() {
        assert_eq!(expanded("{ me { id email } }"), 3);
        assert_eq!(
            expanded("{ me { ...U ... on User { id } } } fragment U on User { id email }"),
            4
        );
    }

    #[test]
    fn a_fragment_bomb_is_counted_exponentially_but_quickly() {
        assert_eq!(expanded(&bomb(10)), 512);
        assert!(expanded(&bomb(40)) > limit_for_complexity(500));
        assert_eq!(expanded(&bomb(200)), usize::MAX);
    }

    #[test]
    fn fragment_cycles_do_not_loop() {
        let doc = "{ ...A } fragment A on Query { __typename ...B } fragment B on Query { ...A }";
        assert_eq!(expanded(doc), 1);
    }
}
