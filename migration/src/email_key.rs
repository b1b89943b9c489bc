//! The uniqueness key of an email address: its normalised form and its look-alike key.
//!
//! Defined here, beside the migration that backfills the key for existing rows, and used by
//! the server for every new row, so backfilled and new keys cannot disagree. Changing how
//! either is computed needs a new migration that recomputes every row.

use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::canonical_combining_class;

/// The form an address is stored and compared in: NFKC, lower-cased, NFKC again (an
/// approximation of Unicode's NFKC_Casefold). NFKC folds canonically equivalent spellings
/// (`é` precomposed or as `e` + U+0301) and compatibility forms (fullwidth `ｋｉｍ＠`,
/// ligatures, superscripts) onto one spelling. The caller trims first.
pub fn normalise(raw: &str) -> String {
    let lowered = raw.nfkc().collect::<String>().to_lowercase();
    lowered.nfkc().collect()
}

/// The look-alike key of a [`normalise`]d address: SHA-256 (hex) of its Unicode TS #39
/// confusable skeleton, with a combining dot above on `i` or `j` dropped (lower-casing
/// `İ` gives `i` + U+0307, which displays as `i`). Two addresses with one key look alike:
/// `kim@example.com`, `kım@example.com`, `ki̇m@example.com` and `kim@exаmple.com` (Cyrillic
/// `а`) share one. Hashed so that the column has a fixed width, whatever the expansion.
pub fn skeleton_key(normalised: &str) -> String {
    let mut skeleton = String::with_capacity(normalised.len());
    let mut base = None;
    for c in unicode_security::skeleton(normalised) {
        if canonical_combining_class(c) == 0 {
            base = Some(c);
        } else if c == '\u{307}' && matches!(base, Some('i' | 'j')) {
            continue;
        }
        skeleton.push(c);
    }
    let digest = Sha256::digest(skeleton.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(raw: &str) -> String {
        skeleton_key(&normalise(raw))
    }

    #[test]
    fn canonical_and_compatibility_spellings_normalise_to_one() {
        assert_eq!(normalise("jos\u{e9}@example.com"), "jos\u{e9}@example.com");
        assert_eq!(
            normalise("jose\u{301}@example.com"),
            "jos\u{e9}@example.com"
        );
        assert_eq!(
            normalise("ｋｉｍ＠ｅｘａｍｐｌｅ．ｃｏｍ"),
            "kim@example.com"
        );
        assert_eq!(normalise("KIM@Example.COM"), "kim@example.com");
    }

    #[test]
    fn look_alikes_share_a_key_and_different_addresses_do_not() {
        let kim = key("kim@example.com");
        for look_alike in [
            "k\u{131}m@example.com", // dotless ı
            "K\u{130}M@example.com", // capital İ, lower-cased to i + U+0307
            "kim@ex\u{430}mple.com", // Cyrillic а in the domain
            "ｋｉｍ@example.com",    // fullwidth
        ] {
            assert_eq!(key(look_alike), kim, "{look_alike}");
        }
        assert_eq!(key("jose\u{301}@example.com"), key("jos\u{e9}@example.com"));
        // Whole-script look-alikes: Cyrillic а р е against Latin a p e.
        assert_eq!(
            key("\u{430}\u{440}\u{435}@example.com"),
            key("ape@example.com")
        );
        for different in ["jim@example.com", "kim@example.org", "kim2@example.com"] {
            assert_ne!(key(different), kim, "{different}");
        }
        // An accent is not a look-alike: jose and josé are two addresses.
        assert_ne!(key("jose@example.com"), key("jos\u{e9}@example.com"));
        assert_eq!(kim.len(), 64);
    }
}
