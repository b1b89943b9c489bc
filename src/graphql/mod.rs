//! The GraphQL schema: built once, shared by every request.

mod context;
mod documents;
mod errors;
mod expansion;
mod guard;
mod introspection;
mod lifecycle;
mod mutation;
mod operations;
mod passkeys;
mod query;
mod second_factor;
mod types;

use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;

use async_graphql::{
    BatchRequest, BatchResponse, EmptySubscription, Request, Response, SDLExportOptions, Schema,
};

pub use context::RequestContext;
pub use mutation::Mutation;
pub use operations::Operation;
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
        self.execute_named(request).await.0
    }

    /// One operation, and what metrics call it.
    async fn execute_named(&self, request: Request) -> (Response, Operation) {
        let (request, operation) = self.documents.prepare(request);
        let request = match request {
            Ok(request) => request,
            Err(error) => return (Response::from_errors(vec![error]), operation),
        };
        let mut response = self.schema.execute(request).await;
        errors::set_codes(&mut response);
        (response, operation)
    }

    /// One operation or a batch, whose operations run concurrently (as async-graphql runs
    /// them) and answer in order. `done` is called as each operation finishes, with its
    /// name for metrics and its response.
    pub async fn execute_batch(
        &self,
        batch: BatchRequest,
        done: impl Fn(Operation, &Response),
    ) -> BatchResponse {
        let run = |request| async {
            let (response, operation) = self.execute_named(request).await;
            done(operation, &response);
            response
        };
        match batch {
            BatchRequest::Single(request) => BatchResponse::Single(run(request).await),
            BatchRequest::Batch(requests) => BatchResponse::Batch(
                requests
                    .into_iter()
                    .map(run)
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
