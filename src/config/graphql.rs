//! The GraphQL section: the limits on an operation and the tools for people exploring
//! the API.

use super::ConfigError;
use super::parse::{Lookup, boolean, positive};

#[derive(Clone, Debug)]
pub struct GraphqlSettings {
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_batch: usize,
    /// Serve the GraphiQL playground on `GET /graphql`: a convenience for people exploring
    /// the API, so on by default in development only.
    pub graphiql: bool,
    /// Answer introspection (`__schema`, `__type`): on by default in development only;
    /// codegen reads the committed `schema.graphql`, so production needs no live schema.
    pub introspection: bool,
}

/// The deepest selection async-graphql's parser lets through: it refuses a document whose
/// selections and values recurse more than 32 levels, and a selection `depth` deep takes
/// `depth - 1` of them. A larger `GRAPHQL_MAX_DEPTH` allows nothing more.
pub const DEEPEST_PARSED_SELECTION: usize = 33;

impl GraphqlSettings {
    /// `in_development` is the default of both exploring tools.
    pub(super) fn read(
        get: &impl Lookup,
        in_development: bool,
        warnings: &mut Vec<String>,
    ) -> Result<Self, ConfigError> {
        let max_depth = positive(get, "GRAPHQL_MAX_DEPTH", 16usize)?;
        if max_depth > DEEPEST_PARSED_SELECTION {
            warnings.push(format!(
                "GRAPHQL_MAX_DEPTH={max_depth} allows nothing beyond {DEEPEST_PARSED_SELECTION}: \
                 the GraphQL parser refuses deeper documents (its recursion limit)"
            ));
        }
        Ok(Self {
            max_depth,
            max_complexity: positive(get, "GRAPHQL_MAX_COMPLEXITY", 500usize)?,
            max_batch: positive(get, "GRAPHQL_MAX_BATCH", 10usize)?,
            graphiql: boolean(get, "GRAPHIQL_ENABLED", in_development)?,
            introspection: boolean(get, "GRAPHQL_INTROSPECTION", in_development)?,
        })
    }
}
