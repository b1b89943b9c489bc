//! The one place that decides what a client sees of an error: after execution, each error
//! of the operation gets its message and `extensions.code` by the TYPE of the value it was
//! made from, so a resolver or guard only writes `?`.
//!
//! async-graphql's blanket `From<T: Display>` keeps the value that `?` converts as the
//! error's `source`, and execution carries it into the response's errors. Then:
//!
//! - an [`AuthError`] gets its code (and `field` or `retryAfter`); an internal one is
//!   logged with its cause chain;
//! - an [`InvalidInput`] (a domain parse that reached `?` directly) answers as the
//!   `BAD_USER_INPUT` it converts to;
//! - any other value (a `DbErr` or an I/O error that reached `?` directly) is internal: it
//!   is logged, and the client gets `INTERNAL_SERVER_ERROR` and "internal server error";
//! - an error without a source but with a path is async-graphql's own: an argument value
//!   that could not be coerced while the field ran (an object variable given a list or a
//!   string, a missing or null value for a non-null argument). It gets `BAD_USER_INPUT`
//!   without `field` (the value did not reach the domain types);
//! - an error with neither is a request error (syntax, validation, limits) and is left as
//!   async-graphql wrote it.
//!
//! async-graphql's own errors (data lookups, guards, scalar and input parsing) carry no
//! source; its only `new_with_source` decodes connection cursors, which this schema has
//! none of.

use std::borrow::Cow;

use async_graphql::{Response, ServerError};

use crate::domain::InvalidInput;
use crate::error::{AuthError, codes};

/// Maps every error of an operation's finished response; run once per operation, not
/// per field (an extension hook would run for every field of every request).
pub fn set_codes(response: &mut Response) {
    for error in &mut response.errors {
        set_code(error);
    }
}

fn set_code(error: &mut ServerError) {
    let Some(source) = error.source.clone() else {
        if !error.path.is_empty() {
            let extensions = error.extensions.get_or_insert_with(Default::default);
            if extensions.get("code").is_none() {
                extensions.set("code", codes::BAD_USER_INPUT);
            }
        }
        return;
    };
    let auth = if let Some(auth) = source.downcast_ref::<AuthError>() {
        Cow::Borrowed(auth)
    } else if let Some(invalid) = source.downcast_ref::<InvalidInput>() {
        Cow::Owned(AuthError::BadUserInput(invalid.clone()))
    } else {
        // The type is unknown here; its message (its `Display`) is the cause to log.
        Cow::Owned(AuthError::internal_msg(std::mem::take(&mut error.message)))
    };
    if let Some(cause) = auth.internal_cause() {
        tracing::error!(error = %cause, "internal error");
    }
    error.message = auth.to_string();
    error.extensions = Some(auth.extensions());
}

#[cfg(test)]
mod tests;
