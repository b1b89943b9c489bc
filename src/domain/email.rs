//! `Email`: a trimmed, normalised (NFKC, lower-case), plausibly deliverable address, and
//! its look-alike key.

use unicode_security::MixedScript;

use super::InvalidInput;

/// Longest address SMTP can carry (RFC 5321 path limit less the brackets).
const MAX_EMAIL_LEN: usize = 254;

/// A validated address in the one form it is stored and compared in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Trims, normalises (NFKC, lower-case: see [`migration::email_key::normalise`]) and
    /// checks the shape `local@domain.tld`. What login accepts.
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let invalid = |msg: &str| InvalidInput::new("email", msg);
        let email = migration::email_key::normalise(raw.trim());
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

    /// As [`parse`](Self::parse), and refuses a local part or a domain label that mixes
    /// scripts (`kim@exаmple.com` with a Cyrillic `а`): what registration accepts. Login
    /// does not check it, so an account registered before the rule still logs in.
    pub fn parse_new(raw: &str) -> Result<Self, InvalidInput> {
        let email = Self::parse(raw)?;
        let (local, domain) = email.0.rsplit_once('@').unwrap_or_default();
        // Augmented script sets: Japanese, Korean and Chinese mixes count as one script,
        // digits and punctuation as any.
        let single_script = std::iter::once(local)
            .chain(domain.split('.'))
            .all(|part| part.is_single_script());
        if !single_script {
            return Err(InvalidInput::new(
                "email",
                "email must not mix scripts (such as Latin and Cyrillic) within its name or \
                 within a part of its domain",
            ));
        }
        Ok(email)
    }

    /// The look-alike key (see [`migration::email_key::skeleton_key`]): unique among
    /// accounts, so no address can be registered beside one that displays alike.
    pub fn skeleton_key(&self) -> String {
        migration::email_key::skeleton_key(&self.0)
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
    fn canonical_and_compatibility_spellings_are_stored_as_one() {
        let nfc = Email::parse("jos\u{e9}@example.com").unwrap();
        assert_eq!(Email::parse("jose\u{301}@example.com").unwrap(), nfc);
        assert_eq!(
            Email::parse("ｋｉｍ＠ｅｘａｍｐｌｅ．ｃｏｍ")
                .unwrap()
                .as_str(),
            "kim@example.com"
        );
    }

    #[test]
    fn registration_refuses_mixed_scripts_in_a_part_and_accepts_single_script_parts() {
        for mixed in [
            "kim@ex\u{430}mple.com",
            "\u{43a}im@example.com",
            "kim@example.\u{441}om",
        ] {
            assert!(Email::parse(mixed).is_ok(), "login still accepts {mixed}");
            let err = Email::parse_new(mixed).unwrap_err();
            assert_eq!(err.field, "email", "{mixed}");
        }
        for single in [
            "kim@example.com",
            "\u{438}\u{432}\u{430}\u{43d}@example.com",
            "\u{438}\u{432}\u{430}\u{43d}@\u{43f}\u{440}\u{438}\u{43c}\u{435}\u{440}.\u{440}\u{444}",
            "jos\u{e9}@ex\u{e4}mple.com",
            "\u{5c71}\u{7530}\u{3072}\u{308d}\u{30b7}@example.jp",
            "k\u{131}m@example.com",
        ] {
            assert!(Email::parse_new(single).is_ok(), "{single}");
        }
    }

    #[test]
    fn look_alikes_share_a_skeleton_key() {
        let key = |raw: &str| Email::parse(raw).unwrap().skeleton_key();
        let kim = key("kim@example.com");
        for look_alike in [
            "ｋｉｍ@example.com",
            "k\u{131}m@example.com",
            "K\u{130}M@example.com",
            "kim@ex\u{430}mple.com",
        ] {
            assert_eq!(key(look_alike), kim, "{look_alike}");
        }
    }

    #[test]
    fn plus_addressing_and_subdomains_are_accepted() {
        assert!(Email::parse("ada+auth@mail.example.co.uk").is_ok());
        assert!(Email::parse("o'brien@example.com").is_ok());
    }
}
