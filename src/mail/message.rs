//! A [`Mail`] as an RFC 5322 message, built by lettre, which encodes every header value
//! (a CR or LF in a subject cannot start a header of its own).
//!
//! Display names are the exception: lettre panics on formatting one that holds a CR or LF
//! (checked with lettre 0.11.23), so control characters in them become spaces here, and a
//! recipient is an address alone.

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart};
use lettre::{Address, Message};

use super::{Mail, SendError};

/// The message `from` sends for `mail`: plain text, or text with an HTML alternative.
pub fn build_message(from: &Mailbox, mail: &Mail) -> Result<Message, SendError> {
    let to = mail
        .to
        .parse::<Address>()
        .map_err(|e| SendError::Permanent(format!("recipient address: {e}")))?;
    let from = Mailbox::new(from.name.as_deref().map(one_line), from.email.clone());
    let builder = Message::builder()
        .from(from)
        .to(Mailbox::new(None, to))
        .subject(mail.subject.clone());
    let built = match &mail.html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(
            mail.text.clone(),
            html.clone(),
        )),
        None => builder
            .header(ContentType::TEXT_PLAIN)
            .body(mail.text.clone()),
    };
    built.map_err(|e| SendError::Permanent(format!("message: {e}")))
}

/// `name` with every control character (CR and LF among them) made a space.
fn one_line(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn formatted(from: &Mailbox, mail: &Mail) -> String {
        let bytes = build_message(from, mail).expect("builds").formatted();
        String::from_utf8(bytes).expect("ASCII on the wire")
    }

    /// The header block: everything before the first empty line.
    fn headers(message: &str) -> Vec<&str> {
        message
            .split("\r\n\r\n")
            .next()
            .unwrap_or_default()
            .split("\r\n")
            .collect()
    }

    fn mail(subject: &str) -> Mail {
        Mail {
            to: "user@example.com".to_owned(),
            subject: subject.to_owned(),
            text: "Hello".to_owned(),
            html: None,
        }
    }

    #[test]
    fn a_crlf_in_a_subject_or_display_name_cannot_start_a_header() {
        let from = Mailbox::new(
            Some("Evil\r\nBcc: victim@example.net".to_owned()),
            "noreply@example.com".parse().unwrap(),
        );
        let message = formatted(
            &from,
            &mail("Hi\r\nBcc: victim@example.net\r\n\r\n<script>"),
        );
        let headers = headers(&message);
        assert!(
            !headers
                .iter()
                .any(|h| h.to_ascii_lowercase().starts_with("bcc")),
            "{message}"
        );
        assert_eq!(
            headers.iter().filter(|h| h.starts_with("Subject:")).count(),
            1,
            "{message}"
        );
        // Folded continuation lines start with white space; nothing else may.
        for line in &headers {
            assert!(
                line.starts_with([' ', '\t']) || line.contains(':'),
                "a header line of its own: {line:?} in {message}"
            );
        }
        assert!(!message.contains("victim@example.net\r\n"), "{message}");
    }

    #[test]
    fn script_in_a_subject_stays_inside_the_subject_and_the_body_is_plain_text() {
        let from: Mailbox = "noreply@example.com".parse().unwrap();
        let message = formatted(&from, &mail("<script>alert(1)</script>"));
        let headers = headers(&message);
        assert!(
            headers
                .iter()
                .any(|h| h.starts_with("Content-Type: text/plain")),
            "{message}"
        );
        assert!(
            headers.iter().filter(|h| h.starts_with("Subject:")).count() == 1,
            "{message}"
        );
    }

    #[test]
    fn an_html_alternative_makes_a_multipart_message() {
        let from: Mailbox = "noreply@example.com".parse().unwrap();
        let mut m = mail("Welcome");
        m.html = Some("<p>Hello</p>".to_owned());
        let message = formatted(&from, &m);
        assert!(message.contains("multipart/alternative"), "{message}");
        assert!(message.contains("<p>Hello</p>"), "{message}");
    }

    #[test]
    fn an_unparseable_recipient_is_a_permanent_failure() {
        let from: Mailbox = "noreply@example.com".parse().unwrap();
        let mut m = mail("x");
        m.to = "not an address\r\nBcc: x@y.z".to_owned();
        assert!(matches!(
            build_message(&from, &m),
            Err(SendError::Permanent(_))
        ));
    }
}
