//! Mails as a user reads them: the MIME parts decoded (quoted-printable, base64), the
//! subject's encoded words decoded, and the token taken from the text as the contract
//! puts it there (alone on a line, and the `token` parameter of the link).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::WAIT;
use crate::smtp::{Received, SmtpSink};

/// One received mail, decoded.
#[derive(Debug, Clone)]
pub struct Letter {
    pub rcpt: Vec<String>,
    pub headers: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    raw: String,
}

impl Letter {
    pub fn decode(received: &Received) -> Self {
        let mut text = String::new();
        let mut html = None;
        collect_parts(&received.headers, &received.body, &mut text, &mut html);
        Letter {
            rcpt: received.rcpt.clone(),
            headers: received.headers.clone(),
            subject: decode_words(received.header("Subject").unwrap_or_default()),
            text,
            html,
            raw: format!("{}\n\n{}", received.headers.join("\n"), received.body),
        }
    }

    /// Every header line named `name` (case-insensitive).
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|h| {
                h.split_once(':')
                    .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            })
            .map(String::as_str)
            .collect()
    }

    /// The lines of the text part that are a token: 43 base64url characters alone.
    pub fn token_lines(&self) -> Vec<String> {
        self.text
            .lines()
            .map(str::trim)
            .filter(|l| l.len() == 43 && l.bytes().all(is_base64url))
            .map(str::to_owned)
            .collect()
    }

    /// The links of the text part.
    pub fn links(&self) -> Vec<url::Url> {
        self.text
            .split(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '(' | ')'))
            .filter(|w| w.starts_with("http://") || w.starts_with("https://"))
            .filter_map(|w| url::Url::parse(w).ok())
            .collect()
    }

    /// The token of this mail: the one token line, equal to the `token` parameter of the
    /// link, which starts with `APP_URL` + `path` + `?token=`.
    pub fn token_at(&self, path: &str) -> String {
        let lines = self.token_lines();
        assert_eq!(lines.len(), 1, "one token line in {:?}", self.text);
        let token = lines[0].clone();
        let prefix = format!("{}{path}?token=", super::APP_URL);
        let links: Vec<_> = self
            .links()
            .into_iter()
            .filter(|l| l.query_pairs().any(|(k, _)| k == "token"))
            .collect();
        assert!(!links.is_empty(), "no link with a token in {:?}", self.text);
        for link in links {
            assert!(
                link.as_str().starts_with(&prefix),
                "{link} does not start with {prefix}"
            );
            let param = link
                .query_pairs()
                .find(|(k, _)| k == "token")
                .map(|(_, v)| v);
            assert_eq!(param.as_deref(), Some(token.as_str()), "{link}");
        }
        token
    }

    pub fn verification_token(&self) -> String {
        self.token_at("/verify-email")
    }

    pub fn reset_token(&self) -> String {
        self.token_at("/reset-password")
    }

    /// Whether any part of the mail carries a token or a link with one.
    pub fn carries_a_token(&self) -> bool {
        !self.token_lines().is_empty()
            || self.text.contains("token=")
            || self.html.as_deref().is_some_and(|h| h.contains("token="))
    }
}

/// Every mail the sink holds, decoded.
pub fn letters(sink: &SmtpSink) -> Vec<Letter> {
    sink.messages().iter().map(Letter::decode).collect()
}

/// The mails `sink` holds for `to`.
pub fn letters_to(sink: &SmtpSink, to: &str) -> Vec<Letter> {
    letters(sink)
        .into_iter()
        .filter(|l| l.rcpt.iter().any(|r| r == to))
        .collect()
}

/// Reads a sink's mails in the order a test takes them: each mail once.
pub struct Inbox<'a> {
    sink: &'a SmtpSink,
    taken: Vec<String>,
}

impl<'a> Inbox<'a> {
    pub fn new(sink: &'a SmtpSink) -> Self {
        Self {
            sink,
            taken: Vec::new(),
        }
    }

    /// Waits for a mail to `to` not taken before, and takes it.
    pub async fn next_to(&mut self, to: &str) -> Letter {
        let start = std::time::Instant::now();
        loop {
            let fresh = letters_to(self.sink, to)
                .into_iter()
                .find(|l| !self.taken.contains(&l.raw));
            if let Some(letter) = fresh {
                self.taken.push(letter.raw.clone());
                return letter;
            }
            assert!(start.elapsed() < WAIT, "no new mail to {to} in {WAIT:?}");
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }

    /// The token of the next verification mail to `to`.
    pub async fn verification_token(&mut self, to: &str) -> String {
        self.next_to(to).await.verification_token()
    }

    /// The token of the next reset mail to `to`.
    pub async fn reset_token(&mut self, to: &str) -> String {
        self.next_to(to).await.reset_token()
    }
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// The value of header `name` among `headers`.
fn header<'h>(headers: &'h [String], name: &str) -> Option<&'h str> {
    headers.iter().find_map(|h| {
        let (k, v) = h.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Fills `text` and `html` from a part (or a whole message) and its headers.
fn collect_parts(headers: &[String], body: &str, text: &mut String, html: &mut Option<String>) {
    let content_type = header(headers, "Content-Type").unwrap_or("text/plain");
    let lower = content_type.to_ascii_lowercase();
    if lower.starts_with("multipart/") {
        let boundary = parameter(content_type, "boundary").expect("a multipart boundary");
        let delimiter = format!("--{boundary}");
        for part in body.split(delimiter.as_str()).skip(1) {
            if part.starts_with("--") {
                break;
            }
            let part = part.strip_prefix('\n').unwrap_or(part);
            let (head, content) = part.split_once("\n\n").unwrap_or((part, ""));
            let part_headers = unfold(head);
            let content = content.strip_suffix('\n').unwrap_or(content);
            collect_parts(&part_headers, content, text, html);
        }
        return;
    }
    let encoding = header(headers, "Content-Transfer-Encoding").unwrap_or("7bit");
    let decoded = decode_body(body, encoding);
    if lower.starts_with("text/html") {
        *html = Some(decoded);
    } else if lower.starts_with("text/plain") {
        text.push_str(&decoded);
    }
}

fn unfold(head: &str) -> Vec<String> {
    let mut headers: Vec<String> = Vec::new();
    for line in head.lines() {
        match headers.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) => last.push_str(line),
            _ => headers.push(line.to_owned()),
        }
    }
    headers
}

/// `name=value` or `name="value"` among a header's parameters.
fn parameter(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

fn decode_body(body: &str, encoding: &str) -> String {
    match encoding.to_ascii_lowercase().as_str() {
        "base64" => {
            let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = STANDARD.decode(compact).expect("a base64 body");
            String::from_utf8(bytes).expect("a UTF-8 body")
        }
        "quoted-printable" => quoted_printable(body, false),
        _ => body.to_owned(),
    }
}

/// Decodes quoted-printable (RFC 2045), or the `Q` encoding of RFC 2047 when `q`.
fn quoted_printable(input: &str, q: bool) -> String {
    let joined = input.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'=', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'_', _) if q => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("UTF-8 after quoted-printable")
}

/// A header value with its RFC 2047 encoded words decoded.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut last_was_word = false;
    for (n, piece) in value.split_whitespace().enumerate() {
        let word = piece
            .strip_prefix("=?")
            .and_then(|p| p.strip_suffix("?="))
            .and_then(|p| {
                let mut fields = p.splitn(3, '?');
                let (_charset, kind, data) = (fields.next()?, fields.next()?, fields.next()?);
                match kind {
                    "B" | "b" => STANDARD
                        .decode(data)
                        .ok()
                        .and_then(|b| String::from_utf8(b).ok()),
                    "Q" | "q" => Some(quoted_printable(data, true)),
                    _ => None,
                }
            });
        match word {
            Some(decoded) => {
                if n > 0 && !last_was_word {
                    out.push(' ');
                }
                out.push_str(&decoded);
                last_was_word = true;
            }
            None => {
                if n > 0 {
                    out.push(' ');
                }
                out.push_str(piece);
                last_was_word = false;
            }
        }
    }
    out
}

#[test]
fn quoted_printable_and_encoded_words_decode() {
    assert_eq!(quoted_printable("a=3Db=\nc =C3=A9", false), "a=bc é");
    assert_eq!(decode_words("=?utf-8?b?w6k=?= =?utf-8?q?a_b?= x"), "éa b x");
}
