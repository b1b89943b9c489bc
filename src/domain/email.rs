//! `Email`: a trimmed, lower-cased, plausibly deliverable address.

use super::InvalidInput;

/// Longest address SMTP can carry (RFC 5321 path limit less the brackets).
const MAX_EMAIL_LEN: usize = 254;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Trims, lower-cases and checks the shape `local@domain.tld`.
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let invalid = |msg: &str| InvalidInput::new("email", msg);
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err(invalid("email is required"));
        }
        if email.len() > MAX_EMAIL_LEN {
            return Err(invalid("email is too long (at most 254 characters)"));
        }
        let Some((local, domain)) = email.rsplit_once('@') else {
            return Err(invalid("email must look like name@example.com"));
        };
        let plausible = !local.is_empty()
            && local.len() <= 64
            && !local.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .split('.')
                .all(|label| !label.is_empty() && label.len() <= 63)
            && !domain.starts_with('-')
            && email
                .chars()
                .all(|c| !c.is_whitespace() && !c.is_control() && !is_invisible(c))
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
        if !plausible {
            return Err(invalid("email must look like name@example.com"));
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Invisible formatting, joining and direction marks (soft hyphen, zero-width characters,
/// bidi overrides, variation selectors, BOM, tags...): they make one address display as
/// another, so no address may hold them.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{34f}'
            | '\u{61c}'
            | '\u{115f}'
            | '\u{1160}'
            | '\u{17b4}'
            | '\u{17b5}'
            | '\u{180b}'..='\u{180f}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{3164}'
            | '\u{fe00}'..='\u{fe0f}'
            | '\u{feff}'
            | '\u{ffa0}'
            | '\u{fff0}'..='\u{fffb}'
            | '\u{e0000}'..='\u{e0fff}'
    )
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_trimmed_and_lowercased() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
    }

    #[test]
    fn malformed_addresses_are_refused_with_the_email_field() {
        for raw in [
            "",
            "   ",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "ada@@example.com",
            "ada@.example.com",
            "ada@example..com",
            "ada @example.com",
            "ada@exa mple.com",
            "ada@example.com.",
            "ada\u{0}@example.com",
            "ada@-example.com",
            "ada@exa'mple.com",
        ] {
            let err = Email::parse(raw).unwrap_err();
            assert_eq!(err.field, "email", "{raw:?}");
        }
    }

    #[test]
    fn an_overlong_address_is_refused() {
        let raw = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&raw).is_err());
        let local_too_long = format!("{}@example.com", "a".repeat(65));
        assert!(Email::parse(&local_too_long).is_err());
    }

    #[test]
    fn invisible_and_direction_marks_are_refused() {
        for c in [
            '\u{ad}', '\u{200b}', '\u{200d}', '\u{202e}', '\u{2066}', '\u{feff}',
        ] {
            assert!(
                Email::parse(&format!("ad{c}a@example.com")).is_err(),
                "{c:?}"
            );
            assert!(
                Email::parse(&format!("ada@exa{c}mple.com")).is_err(),
                "{c:?}"
            );
        }
        assert!(Email::parse("josé@exämple.com").is_ok());
    }

    #[test]
    fn plus_addressing_and_subdomains_are_accepted() {
        assert!(Email::parse("ada+auth@mail.example.co.uk").is_ok());
        assert!(Email::parse("o'brien@example.com").is_ok());
    }
}
