//! [`KnownValidations`], the schema's one async-graphql extension: it hands a request the
//! validation result [`super::ParsedDocuments`] knows for its text and operation, or
//! records the result for the cache. The cache itself runs outside async-graphql, before
//! execution (see [`super::ParsedDocuments::prepare`]).

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextValidation};
use async_graphql::{ServerError, ValidationResult};

use super::{Cache, MAX_VALIDATIONS, lock};

/// Request data: the result of validating this request's text and operation without
/// variables, known from an earlier request.
pub(super) struct Validated(pub(super) ValidationResult);

/// Request data: where to record the result of validating this request.
pub(super) struct Remember {
    cache: Cache,
    query: String,
    operation: Option<String>,
}

impl Remember {
    pub(super) fn new(cache: Cache, query: String, operation: Option<String>) -> Self {
        Self {
            cache,
            query,
            operation,
        }
    }

    fn record(&self, result: ValidationResult) {
        let mut cache = lock(&self.cache);
        // The entry may have been evicted meanwhile; then there is nothing to add to.
        if let Some(entry) = cache.get_mut(&self.query) {
            let known = entry.validated.iter().any(|(n, _)| *n == self.operation);
            if !known && entry.validated.len() < MAX_VALIDATIONS {
                entry.validated.push((self.operation.clone(), result));
            }
        }
    }
}

/// The async-graphql extension of [`ParsedDocuments`]: validation is skipped for a request
/// whose result is known, and recorded for one that asks for it. Only passing results are
/// kept; a document that fails validation is validated (and fails) every time.
pub struct KnownValidations;

impl ExtensionFactory for KnownValidations {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(KnownValidations)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for KnownValidations {
    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        if let Some(Validated(result)) = ctx.data_opt::<Validated>() {
            return Ok(*result);
        }
        let result = next.run(ctx).await;
        if let (Ok(result), Some(remember)) = (&result, ctx.data_opt::<Remember>()) {
            remember.record(*result);
        }
        result
    }
}
