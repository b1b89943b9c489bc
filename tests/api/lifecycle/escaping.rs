//! What a user controls cannot shape a mail beyond its text: an address with a CR/LF is
//! refused before anything is queued, every mail has one recipient and one of each
//! address header, and markup in an address is escaped in the HTML part.

use super::mail::{Inbox, Letter, letters};
use super::{outbox_drained, spawn};
use crate::helpers::*;
use crate::smtp::SmtpSink;
use crate::smtp_tests;

const INJECTED: &str = "ada@example.com\r\nBcc: evil@example.net";

/// One recipient on the envelope and in `To`, and no header a user could have added.
fn assert_plain_headers(letter: &Letter, to: &str) {
    assert_eq!(letter.rcpt, [to], "envelope of {letter:?}");
    assert_eq!(letter.headers_named("To").len(), 1, "{:?}", letter.headers);
    assert!(letter.headers_named("To")[0].contains(to));
    for name in ["Bcc", "Cc", "Reply-To"] {
        assert!(
            letter.headers_named(name).is_empty(),
            "{name} in {:?}",
            letter.headers
        );
    }
    assert_eq!(letter.headers_named("Subject").len(), 1);
    assert!(
        !letter.subject.contains(['\r', '\n']),
        "{:?}",
        letter.subject
    );
}

async fn a_crlf_in_an_address_is_refused_before_any_mail(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, _clock) = spawn(backend, &sink, |_| {}).await;
    let mut inbox = Inbox::new(&sink);

    app.register(INJECTED, PASSWORD, None)
        .await
        .expect_bad_input("email");
    app.request_password_reset(INJECTED)
        .await
        .expect_bad_input("email");
    let grace = app.register_ok("grace@example.com").await;
    app.change_email(&grace.access, INJECTED, PASSWORD)
        .await
        .expect_bad_input("newEmail");

    let mail = inbox.next_to("grace@example.com").await;
    outbox_drained(&app).await;
    let all = letters(&sink);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_plain_headers(&mail, "grace@example.com");
}

async fn markup_in_a_new_address_is_escaped_in_the_notices_html(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, _clock) = spawn(backend, &sink, |_| {}).await;
    let mut inbox = Inbox::new(&sink);
    let ada = app.register_ok("ada@example.com").await;
    inbox.next_to("ada@example.com").await;
    let hostile = "<script>alert(1)</script>@example.com";

    let r = app.change_email(&ada.access, hostile, PASSWORD).await;
    r.expect_success();

    let notice = inbox.next_to("ada@example.com").await;
    assert_plain_headers(&notice, "ada@example.com");
    let html = notice.html.as_deref().expect("an HTML part");
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("&lt;script&gt;"), "{html}");
    assert!(!notice.subject.contains("<script>"), "{}", notice.subject);
    // The mail to that address cannot be carried (SMTP refuses `<` unquoted): it is given
    // up, and nothing reaches anyone else.
    outbox_drained(&app).await;
    assert_eq!(letters(&sink).len(), 2);
}

async fn quotes_and_ampersands_in_an_address_reach_only_it(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, _clock) = spawn(backend, &sink, |_| {}).await;
    let mut inbox = Inbox::new(&sink);
    let odd = "o'brien&co+x@example.com";
    app.register_ok(odd).await;

    let mail = inbox.next_to(odd).await;
    assert_plain_headers(&mail, odd);
    if let Some(html) = &mail.html {
        assert!(!html.contains("o'brien&co"), "unescaped in HTML: {html}");
    }
    mail.verification_token();
}

smtp_tests!(
    a_crlf_in_an_address_is_refused_before_any_mail,
    markup_in_a_new_address_is_escaped_in_the_notices_html,
    quotes_and_ampersands_in_an_address_reach_only_it,
);
