//! `InputErrorCodes`: argument values that cannot be coerced get `BAD_USER_INPUT`.
//!
//! async-graphql reports most malformed arguments as request errors (no `path`), but some
//! variable values (an object variable given a list or a string, a missing or null value
//! for a non-null argument) fail while the field runs, as errors with a `path` and no
//! `extensions.code`. Every error of a field carries a code in this API, so those get
//! `BAD_USER_INPUT` (without `field`: the value did not reach the domain types). Errors of
//! the resolvers already carry their code and pass through untouched.

use std::sync::Arc;

use async_graphql::Response;
use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute};

use crate::error::codes;

pub struct InputErrorCodes;

impl ExtensionFactory for InputErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(InputErrorCodes)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for InputErrorCodes {
    /// Once per operation, on its finished response (a hook on every field's resolution
    /// cost a boxed future per field).
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let mut response = next.run(ctx, operation_name).await;
        for error in response.errors.iter_mut().filter(|e| !e.path.is_empty()) {
            let extensions = error.extensions.get_or_insert_with(Default::default);
            if extensions.get("code").is_none() {
                extensions.set("code", codes::BAD_USER_INPUT);
            }
        }
        response
    }
}
