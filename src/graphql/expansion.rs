//! How many fields a document expands to: documents whose fragment spreads expand to more
//! fields than any real client sends, or nest deeper than [`MAX_NESTING`] once expanded,
//! are refused (by [`super::documents`]) before async-graphql checks or validates them.
//!
//! async-graphql's recursion-depth check and its depth and complexity validators expand
//! every fragment spread where it occurs, so a document of 25 fragments each spreading the
//! previous one twice (under 1 KiB) costs 2^25 visits: seconds to minutes of CPU per
//! request. This counts the expanded size once per fragment (linear in the document) and
//! refuses such a bomb first.
//!
//! Validation also follows fragment spreads recursively (cycle detection, unused
//! fragments, overlapping fields), from every fragment definition, used or not. A chain of
//! thousands of fragments each spreading the next fits in a 64 KiB body and would recurse
//! once per link on a worker's stack; so every fragment is walked here, each once, with
//! its expanded nesting remembered, and the recursion of this walk itself stops at
//! [`MAX_NESTING`]. A fragment that spreads itself (invalid GraphQL, refused by validation
//! with the same message) is refused here, where it cannot make the walk loop.

use std::collections::HashMap;

use async_graphql::Pos;
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

/// Selections nested deeper than this once fragments are expanded are refused outright
/// (async-graphql itself refuses documents nested deeper than 32; the text may nest at most
/// [`crate::nesting::LIMIT`] brackets before it is parsed).
const MAX_NESTING: usize = 64;

/// The most fields a document may expand to: four times the complexity limit (at least
/// 2,000). Far above what the complexity check lets run anyway (GraphiQL's full
/// introspection query expands to a few hundred fields), far below what makes the checks
/// after it slow.
pub fn limit_for_complexity(max_complexity: usize) -> usize {
    max_complexity.max(500).saturating_mul(4)
}

/// A fragment that spreads itself, directly or through others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    /// The fragment spread where the cycle closes.
    pub fragment: String,
    /// Where that spread is.
    pub at: Pos,
}

/// The number of fields of every operation, and of every fragment no operation spreads,
/// with each fragment spread replaced by its fragment; saturating, and `usize::MAX` for a
/// document that nests deeper than [`MAX_NESTING`] once expanded. Each fragment is walked
/// once.
pub fn expanded_fields(document: &ExecutableDocument) -> Result<usize, Cycle> {
    let mut walk = Walk {
        document,
        known: HashMap::new(),
    };
    let mut total = 0usize;
    for (_, operation) in document.operations.iter() {
        let size = walk.expand(&operation.node.selection_set.node, 0)?;
        total = total.saturating_add(size.fields);
    }
    for (name, fragment) in &document.fragments {
        if !walk.known.contains_key(name.as_str()) {
            walk.known.insert(name.as_str(), Known::Expanding);
            let size = walk.expand(&fragment.node.selection_set.node, 0)?;
            walk.known.insert(name.as_str(), Known::Expanded(size));
            total = total.saturating_add(size.fields);
        }
    }
    Ok(total)
}

/// A selection set with its fragments expanded: its fields, and how many levels of
/// non-empty selection sets it nests (itself included).
#[derive(Clone, Copy, Debug)]
struct Size {
    fields: usize,
    height: usize,
}

impl Size {
    const EMPTY: Size = Size {
        fields: 0,
        height: 0,
    };
    const TOO_LARGE: Size = Size {
        fields: usize::MAX,
        height: usize::MAX,
    };
}

/// What the walk knows of a fragment.
#[derive(Clone, Copy, Debug)]
enum Known {
    /// Being expanded: a spread of it now closes a cycle.
    Expanding,
    Expanded(Size),
}

struct Walk<'a> {
    document: &'a ExecutableDocument,
    known: HashMap<&'a str, Known>,
}

impl<'a> Walk<'a> {
    /// The size of `set`, which sits `nesting` levels below its operation or fragment.
    fn expand(&mut self, set: &'a SelectionSet, nesting: usize) -> Result<Size, Cycle> {
        if set.items.is_empty() {
            return Ok(Size::EMPTY);
        }
        if nesting > MAX_NESTING {
            return Ok(Size::TOO_LARGE);
        }
        let mut fields = 0usize;
        let mut height = 0usize;
        for item in &set.items {
            let inner = match &item.node {
                Selection::Field(field) => {
                    fields = fields.saturating_add(1);
                    self.expand(&field.node.selection_set.node, nesting + 1)?
                }
                Selection::InlineFragment(inline) => {
                    self.expand(&inline.node.selection_set.node, nesting + 1)?
                }
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    match self.document.fragments.get(name) {
                        Some(fragment) => self.fragment(
                            name.as_str(),
                            &fragment.node.selection_set.node,
                            spread.pos,
                            nesting + 1,
                        )?,
                        // An unknown fragment counts as nothing here; validation refuses it.
                        None => Size::EMPTY,
                    }
                }
            };
            fields = fields.saturating_add(inner.fields);
            height = height.max(inner.height);
        }
        Ok(Size {
            fields,
            height: height.saturating_add(1),
        })
    }

    /// The size of fragment `name` spread at `at`, `nesting` levels deep: expanded the first
    /// time, remembered after.
    fn fragment(
        &mut self,
        name: &'a str,
        set: &'a SelectionSet,
        at: Pos,
        nesting: usize,
    ) -> Result<Size, Cycle> {
        match self.known.get(name) {
            Some(Known::Expanding) => Err(Cycle {
                fragment: name.to_owned(),
                at,
            }),
            // Expanded here, its deepest selection set would sit at
            // `nesting + height - 1`, past the limit or not.
            Some(Known::Expanded(size))
                if nesting.saturating_add(size.height) > MAX_NESTING + 1 =>
            {
                Ok(Size::TOO_LARGE)
            }
            Some(Known::Expanded(size)) => Ok(*size),
            None => {
                self.known.insert(name, Known::Expanding);
                let size = self.expand(set, nesting)?;
                self.known.insert(name, Known::Expanded(size));
                Ok(size)
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn expanded(query: &str) -> usize {
        expanded_fields(&async_graphql::parser::parse_query(query).expect("parses"))
            .expect("no cycle")
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
    fn fragment_cycles_are_refused_at_the_spread_that_closes_them() {
        let doc = "{ ...A } fragment A on Query { __typename ...B } fragment B on Query { ...A }";
        let cycle = expanded_fields(&async_graphql::parser::parse_query(doc).expect("parses"));
        assert_eq!(
            cycle,
            Err(Cycle {
                fragment: "A".to_owned(),
                at: Pos {
                    line: 1,
                    column: 72
                }
            })
        );
        let unused = "{ __typename } fragment A on Query { ...A }";
        let cycle = expanded_fields(&async_graphql::parser::parse_query(unused).expect("parses"));
        assert!(cycle.is_err());
    }

    /// `links` fragments, each spreading the next, and an operation that spreads `first`.
    fn chain(links: usize, first: Option<usize>) -> String {
        let mut doc = match first {
            Some(i) => format!("{{ ...F{i} }}"),
            None => "{ __typename }".to_owned(),
        };
        for i in 0..links {
            doc.push_str(&format!(" fragment F{i} on Query {{ ...F{} }}", i + 1));
        }
        doc.push_str(&format!(" fragment F{links} on Query {{ __typename }}"));
        doc
    }

    #[test]
    fn fragment_chains_nested_past_the_limit_are_refused_used_or_not() {
        assert_eq!(expanded(&chain(MAX_NESTING - 1, Some(0))), 1);
        assert_eq!(expanded(&chain(MAX_NESTING, Some(0))), usize::MAX);
        // Unused chains, however the fragments are ordered in the walk: validation walks
        // them recursively too.
        assert_ne!(expanded(&chain(MAX_NESTING, None)), usize::MAX);
        assert_eq!(expanded(&chain(MAX_NESTING + 1, None)), usize::MAX);
        assert_eq!(expanded(&chain(3000, None)), usize::MAX);
        // A remembered fragment is too deep where it is spread deep.
        let deep_spread = format!(
            "{{ ...F0 }} {} fragment G on Query {{ {} ...F0 {} }}",
            &chain(40, None)["{ __typename }".len()..],
            "... on Query {".repeat(30),
            "}".repeat(30)
        );
        assert_eq!(expanded(&deep_spread), usize::MAX);
    }
}
