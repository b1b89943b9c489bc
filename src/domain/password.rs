//! `Password`: a new password that meets the policy (8 characters to 72 bytes, never truncated).

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use super::InvalidInput;

/// Fewest characters (Unicode scalar values) a new password may have.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// bcrypt reads at most 72 bytes; longer passwords are refused, not truncated.
pub const MAX_PASSWORD_BYTES: usize = 72;

/// A password chosen at registration. Its `Debug` never shows the value.
#[derive(Clone)]
pub struct Password(SecretString);

impl Password {
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        if raw.chars().count() < MIN_PASSWORD_CHARS {
            return Err(InvalidInput::new(
                "password",
                format!("password must be at least {MIN_PASSWORD_CHARS} characters"),
            ));
        }
        if raw.len() > MAX_PASSWORD_BYTES {
            return Err(InvalidInput::new(
                "password",
                format!("password must be at most {MAX_PASSWORD_BYTES} bytes"),
            ));
        }
        if raw.contains('\0') {
            return Err(InvalidInput::new(
                "password",
                "password must not contain NUL characters",
            ));
        }
        Ok(Self(SecretString::from(raw)))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_characters_are_enough_and_seven_are_not() {
        assert!(Password::parse("12345678").is_ok());
        let err = Password::parse("1234567").unwrap_err();
        assert_eq!(err.field, "password");
    }

    #[test]
    fn seventy_two_bytes_pass_and_seventy_three_fail() {
        assert!(Password::parse(&"a".repeat(72)).is_ok());
        assert_eq!(
            Password::parse(&"a".repeat(73)).unwrap_err().field,
            "password"
        );
    }

    #[test]
    fn the_byte_limit_counts_bytes_not_characters() {
        // 24 three-byte characters = 72 bytes: allowed; 25 = 75 bytes: refused.
        assert!(Password::parse(&"€".repeat(24)).is_ok());
        assert!(Password::parse(&"€".repeat(25)).is_err());
        // 8 multi-byte characters meet the minimum even though they are more than 8 bytes.
        assert!(Password::parse(&"é".repeat(8)).is_ok());
    }

    #[test]
    fn nul_is_refused_because_bcrypt_would_stop_reading_there() {
        assert!(Password::parse("abcd\0efgh").is_err());
    }

    #[test]
    fn debug_never_prints_the_password() {
        let p = Password::parse("hunter2hunter2").unwrap();
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
