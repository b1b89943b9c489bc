//! Argument values that cannot be coerced get `BAD_USER_INPUT`.
//!
//! async-graphql reports most malformed arguments as request errors (no `path`), but some
//! variable values (an object variable given a list or a string, a missing or null value
//! for a non-null argument) fail while the field runs, as errors with a `path` and no
//! `extensions.code`. Every error of a field carries a code in this API, so those get
//! `BAD_USER_INPUT` (without `field`: the value did not reach the domain types). Errors of
//! the resolvers already carry their code and pass through untouched.

use async_graphql::Response;

use crate::error::codes;

/// Gives every field error without a code `BAD_USER_INPUT`; run on each operation's
/// finished response (once per operation, not per field).
pub fn add_codes(response: &mut Response) {
    for error in response.errors.iter_mut().filter(|e| !e.path.is_empty()) {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", codes::BAD_USER_INPUT);
        }
    }
}
