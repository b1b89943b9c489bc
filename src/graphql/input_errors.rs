//! `InputErrorCodes`: argument values that cannot be coerced get `BAD_USER_INPUT`.
//!
//! async-graphql reports most malformed arguments as request errors (no `path`), but some
//! variable values (an object variable given a list or a string, a missing or null value
//! for a non-null argument) fail while the field runs, as errors with a `path` and no
//! `extensions.code`. Every error of a field carries a code in this API, so those get
//! `BAD_USER_INPUT` (without `field`: the value did not reach the domain types). Errors of
//! the resolvers already carry their code and pass through untouched.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo,
};
use async_graphql::{ServerResult, Value};

use crate::error::codes;

pub struct InputErrorCodes;

impl ExtensionFactory for InputErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(InputErrorCodes)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for InputErrorCodes {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        next.run(ctx, info).await.map_err(|mut error| {
            let extensions = error.extensions.get_or_insert_with(Default::default);
            if extensions.get("code").is_none() {
                extensions.set("code", codes::BAD_USER_INPUT);
            }
            error
        })
    }
}
