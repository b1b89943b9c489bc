//! The GraphQL schema: built once, shared by every request.

mod context;
mod documents;
mod expansion;
mod guard;
mod input_errors;
mod mutation;
mod query;
mod types;

use std::sync::Arc;

use async_graphql::{EmptySubscription, SDLExportOptions, Schema};

pub use context::RequestContext;
pub use mutation::Mutation;
pub use query::Query;

use crate::auth::AuthService;
use crate::config::GraphqlSettings;

pub type AppSchema = Schema<Query, Mutation, EmptySubscription>;

/// The schema with its limits and the auth service every resolver reaches through `ctx`.
pub fn build_schema(auth: Arc<AuthService>, limits: &GraphqlSettings) -> AppSchema {
    Schema::build(Query, Mutation, EmptySubscription)
        .data(auth)
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .extension(documents::ParsedDocuments::for_complexity(
            limits.max_complexity,
        ))
        .extension(input_errors::InputErrorCodes)
        .finish()
}

/// The SDL that `schema.graphql` must equal (`auth-server schema > schema.graphql`). It
/// keeps `@specifiedBy` on custom scalars, as live introspection reports them, so tools
/// reading either source see the same schema.
pub fn sdl() -> String {
    Schema::build(Query, Mutation, EmptySubscription)
        .finish()
        .sdl_with_options(SDLExportOptions::new().include_specified_by())
}
