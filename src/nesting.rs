//! How deeply client input may nest: one linear, non-recursive scan of a GraphQL text or a
//! JSON text that refuses brackets nested deeper than [`LIMIT`], before anything recursive
//! (a parser, the conversion of its output, validation, `Drop`) touches the input.
//!
//! async-graphql's parser turns argument values into trees recursively, without a bound,
//! and so do the steps after it. A 3 KB argument of 1,600 nested lists (`{a(b:[[[…]]])}`)
//! overflowed a tokio worker's 2 MiB stack, and a stack overflow aborts the whole process:
//! one unauthenticated request stopped the server. Bounding the nesting of the text bounds
//! the depth of every recursion over it, whatever the parser does.
//!
//! The scan of a GraphQL text counts `{`, `[` and `(` together and skips what the GraphQL
//! lexer does not read as punctuation: string literals (with their escapes), block strings
//! (`"""…"""`, where only `\"""` is an escape) and `#` comments. On every text the parser
//! accepts, the scan reads the same tokens the lexer does, so the depth it sees is the
//! depth of the parsed document. On a text the parser refuses, the parser stops at the
//! first token where the two differ and has nested no deeper than the scan saw by then.
//! The JSON scan counts `{` and `[` and skips JSON strings.
//!
//! This file uses nothing but `core`: the fuzz target (`fuzz/fuzz_targets/document.rs`)
//! compiles it on its own, without the server's dependencies.

/// The deepest nesting accepted: of `{`, `[` and `(` together in a GraphQL document, of
/// `{` and `[` in a JSON text (a request body, counted from its outermost bracket, or GET's
/// `variables` / `extensions`). GraphiQL's and GraphQL Code Generator's introspection
/// queries nest about a dozen levels and async-graphql refuses selections nested deeper
/// than 32; at 64 the whole request path runs in a fraction of a 2 MiB stack, even in a
/// debug build.
pub const LIMIT: usize = 64;

/// A text nested deeper than [`LIMIT`]: where its first bracket past the limit is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooDeep {
    /// Byte offset of that bracket in the text.
    pub offset: usize,
}

impl TooDeep {
    /// Line and column (both from 1, the column in characters) of the bracket in `text`,
    /// for an error that points at it as GraphQL errors do.
    pub fn line_column(&self, text: &str) -> (usize, usize) {
        let before = text.get(..self.offset).unwrap_or(text);
        let line_start = before.rfind(['\n', '\r']).map_or(0, |i| i + 1);
        let lines = before.matches('\n').count() + before.matches('\r').count()
            - before.matches("\r\n").count();
        (lines + 1, before[line_start..].chars().count() + 1)
    }
}

/// Refuses a GraphQL text whose `{`, `[` and `(` nest deeper than [`LIMIT`] outside string
/// literals, block strings and comments. Linear in the text, constant memory.
pub fn check_graphql(text: &str) -> Result<(), TooDeep> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        i = match byte {
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > LIMIT {
                    return Err(TooDeep { offset: i });
                }
                i + 1
            }
            // Unbalanced closers are the parser's to report; the count only never drops
            // below zero, so the deepest point is never under-counted.
            b'}' | b']' | b')' => {
                depth = depth.saturating_sub(1);
                i + 1
            }
            b'#' => skip_comment(bytes, i + 1),
            b'"' if bytes[i..].starts_with(b"\"\"\"") => skip_block_string(bytes, i + 3),
            b'"' => skip_string(bytes, i + 1),
            _ => i + 1,
        };
    }
    Ok(())
}

/// Refuses a JSON text whose arrays and objects nest deeper than [`LIMIT`]. Linear in the
/// text, constant memory; the text is not validated (the JSON parser does that next).
pub fn check_json(bytes: &[u8]) -> Result<(), TooDeep> {
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        i = match byte {
            b'{' | b'[' => {
                depth += 1;
                if depth > LIMIT {
                    return Err(TooDeep { offset: i });
                }
                i + 1
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                i + 1
            }
            b'"' => skip_json_string(bytes, i + 1),
            _ => i + 1,
        };
    }
    Ok(())
}

/// Past a `#` comment, which runs to the end of its line.
fn skip_comment(bytes: &[u8], mut i: usize) -> usize {
    while let Some(&byte) = bytes.get(i) {
        if byte == b'\n' || byte == b'\r' {
            return i;
        }
        i += 1;
    }
    i
}

/// Past a block string's closing `"""`, from just after its opening one. Inside, `\"""` is
/// the only escape: a lone backslash is an ordinary character.
fn skip_block_string(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() {
        let rest = &bytes[i..];
        if rest.starts_with(b"\\\"\"\"") {
            i += 4;
        } else if rest.starts_with(b"\"\"\"") {
            return i + 3;
        } else {
            i += 1;
        }
    }
    i
}

/// Past a string literal's closing quote, from just after its opening one. A backslash
/// escapes the byte after it; a line terminator ends the literal (strings cannot span
/// lines: the parser refuses the text there).
fn skip_string(bytes: &[u8], mut i: usize) -> usize {
    while let Some(&byte) = bytes.get(i) {
        match byte {
            b'"' => return i + 1,
            b'\n' | b'\r' => return i,
            b'\\' if matches!(bytes.get(i + 1), Some(b'\n' | b'\r')) => return i + 1,
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    i
}

/// Past a JSON string's closing quote, from just after its opening one.
fn skip_json_string(bytes: &[u8], mut i: usize) -> usize {
    while let Some(&byte) = bytes.get(i) {
        match byte {
            b'"' => return i + 1,
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(open: &str, depth: usize, inner: &str, close: &str) -> String {
        format!("{}{inner}{}", open.repeat(depth), close.repeat(depth))
    }

    #[test]
    fn nesting_up_to_the_limit_passes_and_one_more_is_refused_at_its_bracket() {
        for (open, close) in [("{a ", "}"), ("[", "]"), ("(a:", ")"), ("{a:", "}")] {
            assert_eq!(check_graphql(&nested(open, LIMIT, "1", close)), Ok(()));
            let text = nested(open, LIMIT + 1, "1", close);
            let offset = LIMIT * open.len();
            assert_eq!(check_graphql(&text), Err(TooDeep { offset }), "{open}");
        }
        // The three kinds count together.
        let mixed = "{a(b:[".repeat(LIMIT / 3) + "{";
        assert_eq!(check_graphql(&mixed), Ok(()));
        assert!(check_graphql(&(mixed + "[[")).is_err());
        // Siblings do not add up.
        let wide = format!("{{ {} }}", "a(b: [[1]]) ".repeat(10_000));
        assert_eq!(check_graphql(&wide), Ok(()));
    }

    #[test]
    fn brackets_in_strings_block_strings_and_comments_do_not_count() {
        let deep = "[".repeat(LIMIT * 2);
        let quoted = serde_json::to_string(&deep).unwrap();
        for text in [
            format!("{{ a(b: {quoted}) }}"),
            format!("{{ a(b: \"\\\"{deep}\") }}"),
            format!("{{ a(b: \"\\\\\\\"{deep}\") }}"),
            format!("{{ a(b: \"\"\"{deep}\"\"\") }}"),
            format!("{{ a(b: \"\"\"\\\"\"\"{deep}\\\"\"\" \"\"\") }}"),
            format!("{{ a(b: \"\"\"\\{deep}\n{deep}\"\"\") }}"),
            format!("{{ a # {deep}\n}}"),
            format!("{{ a # {deep}\r}}"),
            format!("{{ a(b: \"\") # \"{deep}\n}}"),
            // `\\"""` in a block string is a backslash and an escaped `"""`: it goes on.
            format!("{{ a(b: \"\"\"\\\\\"\"\" c: {deep}) }}"),
        ] {
            assert_eq!(check_graphql(&text), Ok(()), "{text:.80}");
        }
    }

    #[test]
    fn what_ends_a_string_or_comment_early_is_counted_after_it() {
        let deep = "[".repeat(LIMIT + 1);
        for text in [
            // An escaped backslash does not escape the quote after it.
            format!("{{ a(b: \"\\\\\" c: {deep}) }}"),
            // An empty string is not the start of a block string.
            format!("{{ a(b: \"\" c: {deep}) }}"),
            // A block string ends at the first unescaped `"""`.
            format!("{{ a(b: \"\"\"x\"\"\" c: {deep}) }}"),
            // A comment and a string end at their line.
            format!("{{ a # x\n{deep} }}"),
            format!("{{ a # x\r{deep} }}"),
            format!("{{ a(b: \"x\n{deep}\") }}"),
            format!("{{ a(b: \"x\\\n{deep}\") }}"),
            // Unbalanced closers cannot hide depth.
            format!("]]]]{{ a(b: {deep}) }}"),
        ] {
            assert!(check_graphql(&text).is_err(), "{text:.80}");
        }
    }

    #[test]
    fn unterminated_strings_comments_and_multibyte_text_end_the_scan_cleanly() {
        for text in [
            "\"",
            "\"\\",
            "\"\"\"",
            "\"\"\"\\",
            "\"\"\"\\\"\"",
            "#",
            "{ a(b: \"é[[[\\é\") # ✓\n}",
        ] {
            assert_eq!(check_graphql(text), Ok(()), "{text}");
        }
    }

    #[test]
    fn json_nesting_counts_arrays_and_objects_outside_strings() {
        let deep = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        assert_eq!(check_json(deep(LIMIT).as_bytes()), Ok(()));
        assert_eq!(
            check_json(deep(LIMIT + 1).as_bytes()),
            Err(TooDeep { offset: LIMIT })
        );
        let objects = format!("{}1{}", "{\"a\":".repeat(LIMIT + 1), "}".repeat(LIMIT + 1));
        assert!(check_json(objects.as_bytes()).is_err());
        let text = format!(
            "{{\"query\": \"{}\", \"v\": \"\\\"{}\"}}",
            "[".repeat(200),
            "{".repeat(200)
        );
        assert_eq!(check_json(text.as_bytes()), Ok(()));
        assert!(
            check_json(format!("{{\"a\": \"\\\\\", \"b\": {}}}", deep(LIMIT)).as_bytes()).is_err()
        );
        assert_eq!(check_json(b"\"\\"), Ok(()));
    }

    #[test]
    fn positions_are_lines_and_character_columns() {
        let text = "query {\r\n  é: a(b: [[\n[";
        let at = |offset| TooDeep { offset }.line_column(text);
        assert_eq!(at(0), (1, 1));
        assert_eq!(at(6), (1, 7));
        assert_eq!(at(text.find('[').unwrap()), (2, 11));
        assert_eq!(at(text.len() - 1), (3, 1));
    }
}
