//! The one error type of the service and its mapping to the contract's `extensions.code`.
//!
//! The auth service returns `AuthError`, and resolvers pass it on with `?`. What a client
//! sees is decided after execution, by the error's type, in one pass
//! (`graphql::errors`), which uses [`AuthError::extensions`] and logs
//! [`AuthError::internal_cause`]. There is deliberately no conversion into a GraphQL
//! error here: one that set the code in a resolver could skip the log.

use async_graphql::ErrorExtensionValues;

use crate::domain::InvalidInput;

/// The contract's error codes, spelled once.
pub mod codes {
    pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
    pub const EMAIL_TAKEN: &str = "EMAIL_TAKEN";
    pub const USERNAME_TAKEN: &str = "USERNAME_TAKEN";
    pub const INVALID_CREDENTIALS: &str = "INVALID_CREDENTIALS";
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    pub const INVALID_REFRESH_TOKEN: &str = "INVALID_REFRESH_TOKEN";
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    pub const INVALID_TOKEN: &str = "INVALID_TOKEN";
    pub const EMAIL_NOT_VERIFIED: &str = "EMAIL_NOT_VERIFIED";
    pub const MFA_REQUIRED: &str = "MFA_REQUIRED";
    pub const INVALID_MFA_CODE: &str = "INVALID_MFA_CODE";
    pub const MFA_ALREADY_ENABLED: &str = "MFA_ALREADY_ENABLED";
    pub const INVALID_PASSKEY: &str = "INVALID_PASSKEY";
    pub const PASSKEYS_DISABLED: &str = "PASSKEYS_DISABLED";
    pub const INTERNAL_SERVER_ERROR: &str = "INTERNAL_SERVER_ERROR";
}

/// Everything an operation can fail with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    BadUserInput(#[from] InvalidInput),
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("this username is taken")]
    UsernameTaken,
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("authentication required")]
    Unauthenticated,
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    /// A mailed token (verification, reset, email change) that is unknown, malformed,
    /// expired, used, superseded or for another purpose or account: one answer, no oracle.
    #[error("invalid or expired token")]
    InvalidToken,
    /// The password was right, but the address is not verified yet and the server requires it.
    #[error("the email address is not verified; use the link in the verification mail")]
    EmailNotVerified,
    /// The password was right and the account has a second factor: no tokens yet; the
    /// client spends the challenge's ticket with `verifyMfa`.
    #[error("a second factor is required; call verifyMfa with the mfaToken")]
    MfaRequired(MfaChallenge),
    /// A wrong, reused or expired TOTP or recovery code (or none pending to confirm).
    #[error("invalid code")]
    InvalidMfaCode,
    /// `enrollTotp` or `confirmTotp` while TOTP is already on: `disableTotp` first.
    #[error("TOTP is already enabled; disable it first to enrol again")]
    MfaAlreadyEnabled,
    /// A passkey credential that does not verify: unknown, of another account, registered
    /// already, from another origin, without user verification, a bad signature, or a
    /// signature counter that went back (a cloned authenticator). One answer: the log
    /// says which.
    #[error("the passkey was not accepted")]
    InvalidPasskey,
    /// A passkey operation on a server whose relying party is not configured.
    #[error("passkeys are not configured on this server (WEBAUTHN_RP_ID, WEBAUTHN_ORIGINS)")]
    PasskeysOff,
    /// `retry_after` is whole seconds, at least 1.
    #[error("too many attempts; retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    /// The cause is for the log only.
    #[error("internal server error")]
    Internal(Cause),
}

impl AuthError {
    /// Wraps an unexpected failure; its cause is logged, never sent.
    pub fn internal(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(std::sync::Arc::new(cause))
    }

    /// An unexpected failure described by a message (for the log).
    pub fn internal_msg(message: impl Into<String>) -> Self {
        let boxed: Box<dyn std::error::Error + Send + Sync> = message.into().into();
        Self::Internal(std::sync::Arc::from(boxed))
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BadUserInput(_) => codes::BAD_USER_INPUT,
            Self::EmailTaken => codes::EMAIL_TAKEN,
            Self::UsernameTaken => codes::USERNAME_TAKEN,
            Self::InvalidCredentials => codes::INVALID_CREDENTIALS,
            Self::Unauthenticated => codes::UNAUTHENTICATED,
            Self::InvalidRefreshToken => codes::INVALID_REFRESH_TOKEN,
            Self::InvalidToken => codes::INVALID_TOKEN,
            Self::EmailNotVerified => codes::EMAIL_NOT_VERIFIED,
            Self::MfaRequired(_) => codes::MFA_REQUIRED,
            Self::InvalidMfaCode => codes::INVALID_MFA_CODE,
            Self::MfaAlreadyEnabled => codes::MFA_ALREADY_ENABLED,
            Self::InvalidPasskey => codes::INVALID_PASSKEY,
            Self::PasskeysOff => codes::PASSKEYS_DISABLED,
            Self::RateLimited { .. } => codes::RATE_LIMITED,
            Self::Internal(_) => codes::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `extensions` a client receives: `code`, and `field`, `retryAfter`, or `mfaToken`
    /// and `methods`. The message
    /// it receives is the error's `Display`.
    pub fn extensions(&self) -> ErrorExtensionValues {
        let mut ext = ErrorExtensionValues::default();
        ext.set("code", self.code());
        match self {
            Self::BadUserInput(invalid) => ext.set("field", invalid.field),
            Self::RateLimited { retry_after } => ext.set("retryAfter", *retry_after),
            Self::MfaRequired(challenge) => {
                ext.set("mfaToken", challenge.token.as_str());
                ext.set("methods", challenge.methods.clone());
            }
            _ => {}
        }
        ext
    }

    /// For an internal error, its cause and the cause's whole source chain on one line
    /// (for the log only); `None` for an error the client caused.
    pub fn internal_cause(&self) -> Option<String> {
        match self {
            Self::Internal(cause) => Some(chain(cause)),
            _ => None,
        }
    }
}

impl From<sea_orm::DbErr> for AuthError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::internal(e)
    }
}

/// What `MFA_REQUIRED` hands the client: the single-use ticket for `verifyMfa` and the
/// methods it may use (`totp`, `recovery_code`).
#[derive(Clone)]
pub struct MfaChallenge {
    pub token: String,
    pub methods: Vec<&'static str>,
}

impl std::fmt::Debug for MfaChallenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaChallenge")
            .field("token", &"***")
            .field("methods", &self.methods)
            .finish()
    }
}

/// An unexpected failure's cause, kept for the log.
pub type Cause = std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>;

/// The cause and its whole source chain on one line.
fn chain(cause: &Cause) -> String {
    let mut out = cause.to_string();
    let mut source = cause.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::Value;

    fn ext(e: AuthError) -> (String, ErrorExtensionValues) {
        (e.to_string(), e.extensions())
    }

    #[test]
    fn each_error_carries_its_code() {
        let cases = [
            (AuthError::EmailTaken, "EMAIL_TAKEN"),
            (AuthError::UsernameTaken, "USERNAME_TAKEN"),
            (AuthError::InvalidCredentials, "INVALID_CREDENTIALS"),
            (AuthError::Unauthenticated, "UNAUTHENTICATED"),
            (AuthError::InvalidRefreshToken, "INVALID_REFRESH_TOKEN"),
            (AuthError::InvalidToken, "INVALID_TOKEN"),
            (AuthError::EmailNotVerified, "EMAIL_NOT_VERIFIED"),
            (AuthError::InvalidMfaCode, "INVALID_MFA_CODE"),
            (AuthError::MfaAlreadyEnabled, "MFA_ALREADY_ENABLED"),
            (AuthError::RateLimited { retry_after: 3 }, "RATE_LIMITED"),
            (AuthError::internal_msg("boom"), "INTERNAL_SERVER_ERROR"),
        ];
        for (err, code) in cases {
            let (_, ext) = ext(err);
            assert_eq!(ext.get("code"), Some(&Value::from(code)));
        }
    }

    #[test]
    fn bad_input_names_its_field() {
        let (msg, ext) = ext(AuthError::from(InvalidInput::new("username", "too short")));
        assert_eq!(msg, "too short");
        assert_eq!(ext.get("code"), Some(&Value::from("BAD_USER_INPUT")));
        assert_eq!(ext.get("field"), Some(&Value::from("username")));
    }

    #[test]
    fn mfa_required_carries_the_ticket_and_the_methods_but_debug_hides_the_ticket() {
        let err = AuthError::MfaRequired(MfaChallenge {
            token: "ticket".into(),
            methods: vec!["totp", "recovery_code"],
        });
        assert!(!format!("{err:?}").contains("ticket\""));
        let (_, ext) = ext(err);
        assert_eq!(ext.get("code"), Some(&Value::from("MFA_REQUIRED")));
        assert_eq!(ext.get("mfaToken"), Some(&Value::from("ticket")));
        assert_eq!(
            ext.get("methods"),
            Some(&Value::List(vec![
                Value::from("totp"),
                Value::from("recovery_code")
            ]))
        );
    }

    #[test]
    fn rate_limited_says_when_to_retry() {
        let (_, ext) = ext(AuthError::RateLimited { retry_after: 42 });
        assert_eq!(ext.get("retryAfter"), Some(&Value::from(42u64)));
    }

    #[test]
    fn internal_errors_never_reveal_their_cause() {
        let cause = sea_orm::DbErr::Custom("SELECT secret FROM users at /src/db.rs".into());
        let (msg, ext) = ext(AuthError::from(cause));
        assert_eq!(msg, "internal server error");
        assert_eq!(ext.get("code"), Some(&Value::from("INTERNAL_SERVER_ERROR")));
        assert!(ext.get("field").is_none());
    }

    #[test]
    fn only_internal_errors_have_a_cause_to_log_with_its_chain() {
        #[derive(Debug, thiserror::Error)]
        #[error("query failed")]
        struct Outer(#[source] std::io::Error);

        let err = AuthError::internal(Outer(std::io::Error::other("disk full")));
        assert_eq!(
            err.internal_cause().as_deref(),
            Some("query failed: disk full")
        );
        assert_eq!(err.to_string(), "internal server error");
        assert_eq!(AuthError::EmailTaken.internal_cause(), None);
    }
}
