//! The GraphQL schema: built once, shared by every request.

mod context;
mod documents;
mod errors;
mod expansion;
mod guard;
mod introspection;
mod lifecycle;
mod mutation;
mod query;
mod types;

use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;

use async_graphql::{
    BatchRequest, BatchResponse, EmptySubscription, Request, Response, SDLExportOptions, Schema,
};

pub use context::RequestContext;
pub use mutation::Mutation;
pub use query::Query;

use crate::auth::AuthService;
use crate::config::GraphqlSettings;

pub type AppSchema = Schema<Query, Mutation, EmptySubscription>;

/// Runs operations: the schema (built once, with its limits and the auth service every
/// resolver reaches through `ctx`) and what runs around it on each operation.
///
/// The schema has one async-graphql extension, for the validations the document cache
/// knows: with any installed, every field goes through the extension chain, so the
/// document cache runs before execution and the error mapping ([`errors`]) after it
/// instead.
#[derive(Clone)]
pub struct Executor {
    schema: AppSchema,
    documents: documents::ParsedDocuments,
}

impl Executor {
    pub fn new(auth: Arc<AuthService>, limits: &GraphqlSettings) -> Self {
        let mut builder = Schema::build(Query, Mutation::default(), EmptySubscription)
            .data(auth)
            .limit_depth(limits.max_depth)
            .limit_complexity(limits.max_complexity)
            .extension(documents::KnownValidations);
        let mut documents = documents::ParsedDocuments::for_complexity(limits.max_complexity);
        if !limits.introspection {
            builder = introspection::disable(builder);
            documents = documents.refusing_introspection();
        }
        Self {
            schema: builder.finish(),
            documents,
        }
    }

    /// One operation.
    pub async fn execute(&self, request: Request) -> Response {
        let request = match self.documents.prepare(request) {
            Ok(request) => request,
            Err(error) => return Response::from_errors(vec![error]),
        };
        let mut response = self.schema.execute(request).await;
        errors::set_codes(&mut response);
        response
    }

    /// One operation or a batch, whose operations run concurrently (as async-graphql runs
    /// them) and answer in order.
    pub async fn execute_batch(&self, batch: BatchRequest) -> BatchResponse {
        match batch {
            BatchRequest::Single(request) => BatchResponse::Single(self.execute(request).await),
            BatchRequest::Batch(requests) => BatchResponse::Batch(
                requests
                    .into_iter()
                    .map(|request| self.execute(request))
                    .collect::<FuturesOrdered<_>>()
                    .collect()
                    .await,
            ),
        }
    }
}

/// The SDL that `schema.graphql` must equal (`auth-server schema > schema.graphql`). It
/// keeps `@specifiedBy` on custom scalars, as live introspection reports them, so tools
/// reading either source see the same schema. Built apart from [`Executor`]'s schema, so
/// it is the same whether `GRAPHQL_INTROSPECTION` is on or off.
pub fn sdl() -> String {
    Schema::build(Query, Mutation::default(), EmptySubscription)
        .finish()
        .sdl_with_options(SDLExportOptions::new().include_specified_by())
}
