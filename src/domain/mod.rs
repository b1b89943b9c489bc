//! Validated values: once one exists it is valid, and nothing downstream re-checks it.

mod email;
mod password;
mod username;

pub use email::Email;
pub use password::{MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS, Password};
pub use username::Username;

/// Why a raw input was refused; `field` is the input field as the schema spells it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidInput {
    pub field: &'static str,
    pub message: String,
}

impl InvalidInput {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}
