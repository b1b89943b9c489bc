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

impl GraphqlSettings {
    /// `in_development` is the default of both exploring tools.
    pub(super) fn read(get: &impl Lookup, in_development: bool) -> Result<Self, ConfigError> {
        Ok(Self {
            max_depth: positive(get, "GRAPHQL_MAX_DEPTH", 16usize)?,
            max_complexity: positive(get, "GRAPHQL_MAX_COMPLEXITY", 500usize)?,
            max_batch: positive(get, "GRAPHQL_MAX_BATCH", 10usize)?,
            graphiql: boolean(get, "GRAPHIQL_ENABLED", in_development)?,
            introspection: boolean(get, "GRAPHQL_INTROSPECTION", in_development)?,
        })
    }
}
