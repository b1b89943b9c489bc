//! `Username`: 3 to 32 ASCII letters, digits, `_`, `.`, `-`; unique case-insensitively.

use super::InvalidInput;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    /// Trims surrounding whitespace and checks the allowed characters and length.
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let name = raw.trim();
        let len = name.chars().count();
        if !(3..=32).contains(&len) {
            return Err(InvalidInput::new(
                "username",
                "username must be 3 to 32 characters",
            ));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err(InvalidInput::new(
                "username",
                "username may contain only letters, digits, '_', '.' and '-'",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    /// As the user typed it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form uniqueness and lookups use.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_case_for_display_and_lowercases_for_lookup() {
        let u = Username::parse(" Ada_Lovelace.1-x ").unwrap();
        assert_eq!(u.as_str(), "Ada_Lovelace.1-x");
        assert_eq!(u.normalized(), "ada_lovelace.1-x");
    }

    #[test]
    fn length_is_three_to_thirty_two_characters() {
        assert!(Username::parse("abc").is_ok());
        assert!(Username::parse(&"a".repeat(32)).is_ok());
        assert_eq!(Username::parse("ab").unwrap_err().field, "username");
        assert!(Username::parse(&"a".repeat(33)).is_err());
    }

    #[test]
    fn other_characters_are_refused() {
        for raw in [
            "adä",
            "ada lovelace",
            "ada@home",
            "ada!",
            "a\u{0}b",
            "ad'; drop",
            "a\nb",
        ] {
            assert_eq!(
                Username::parse(raw).unwrap_err().field,
                "username",
                "{raw:?}"
            );
        }
    }
}
