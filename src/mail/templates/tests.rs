use std::path::Path;

use super::environment::duration;
use super::*;

const TOKEN: &str = "abcDEF0123456789_-abcDEF0123456789_-abcDEF0";

fn context(kind: MailKind) -> MailContext {
    let app_url = Url::parse("https://app.example/base").expect("valid url");
    let (path, minutes) = match kind {
        MailKind::ResetPassword => ("reset-password", 60),
        _ => ("verify-email", 24 * 60),
    };
    let with_token = kind != MailKind::EmailChanged;
    MailContext {
        to: "ann@example.com".to_owned(),
        username: Some("ann".to_owned()),
        link: with_token.then(|| link(&app_url, path, TOKEN)),
        token: with_token.then(|| TOKEN.to_owned()),
        expires_in_minutes: if with_token { minutes } else { 0 },
        new_email: (!with_token).then(|| "ann.new@example.com".to_owned()),
        app_url: app_url.to_string(),
    }
}

fn write(dir: &Path, name: &str, source: &str) {
    std::fs::write(dir.join(name), source).expect("write override");
}

fn load_err(dir: &Path) -> String {
    Templates::load(Some(dir))
        .expect_err("a broken override stops the load")
        .to_string()
}

#[test]
fn the_table_has_three_parts_per_kind_in_order() {
    for kind in MailKind::ALL {
        for (part, suffix) in [
            (Part::Subject, "subject.txt"),
            (Part::Text, "txt"),
            (Part::Html, "html"),
        ] {
            let (name, _) = BUILT_IN[kind as usize * 3 + part as usize];
            assert_eq!(name, format!("{}.{suffix}", kind.name()));
        }
    }
}

#[test]
fn every_kind_renders_with_the_built_ins() {
    let templates = Templates::built_in();
    for kind in MailKind::ALL {
        let ctx = context(kind);
        let mail = templates.render(kind, &ctx).expect("renders");
        assert_eq!(mail.to, "ann@example.com");
        assert!(!mail.subject.is_empty(), "{kind:?}");
        assert!(mail.text.ends_with(".\n") && !mail.text.ends_with("\n\n"));
        let html = mail.html.expect("an HTML part");
        assert!(html.contains("<a href="), "{kind:?}: {html}");
        if kind == MailKind::EmailChanged {
            assert!(mail.text.contains("ann.new@example.com"));
            assert!(mail.text.contains("If this wasn't you"));
            assert!(!mail.text.contains("token"));
            assert!(html.contains("ann.new@example.com"));
        } else {
            let link = ctx.link.expect("a link");
            assert!(mail.text.lines().any(|line| line == TOKEN), "{}", mail.text);
            assert!(mail.text.lines().any(|line| line == link), "{}", mail.text);
            assert!(html.contains(TOKEN));
            let lifetime = if kind == MailKind::ResetPassword {
                "expire in 60 minutes"
            } else {
                "expire in 24 hours"
            };
            let text = mail.text.replace('\n', " ");
            assert!(text.contains(lifetime), "{kind:?}: {text}");
        }
    }
}

#[test]
fn html_escapes_what_text_leaves_alone() {
    let templates = Templates::built_in();
    let mut ctx = context(MailKind::EmailChanged);
    ctx.username = Some("<script>alert(1)</script>".to_owned());
    ctx.new_email = Some("\"<script>\"@example.com".to_owned());
    let mail = templates
        .render(MailKind::EmailChanged, &ctx)
        .expect("renders");
    let html = mail.html.expect("an HTML part");
    assert!(!html.contains("<script>"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
        "{html}"
    );
    assert!(mail.text.contains("Hi <script>alert(1)</script>,"));
    assert!(mail.text.contains("\"<script>\"@example.com"));
}

#[test]
fn a_subject_is_one_line_of_at_most_200_characters() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "verify_email.subject.txt",
        "\n Welcome, {{ username }}!\n\n",
    );
    let templates = Templates::load(Some(dir.path())).expect("loads");
    let mut ctx = context(MailKind::VerifyEmail);
    ctx.username = Some("Eve\r\nBcc: all@example.com\tx\u{2028}y\u{7}".to_owned());
    let mail = templates
        .render(MailKind::VerifyEmail, &ctx)
        .expect("renders");
    assert_eq!(mail.subject, "Welcome, Eve  Bcc: all@example.com x y !");

    ctx.username = Some("é".repeat(300));
    let subject = templates
        .render(MailKind::VerifyEmail, &ctx)
        .expect("renders")
        .subject;
    assert_eq!(subject.chars().count(), 200);
    assert!(subject.starts_with("Welcome, éé"));
}

#[test]
fn an_override_replaces_one_file_and_keeps_the_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "verify_email.txt", "Code:\n{{ token }}\n");
    write(dir.path(), "README.md", "not a template: ignored");
    let templates = Templates::load(Some(dir.path())).expect("loads");
    let built_in = Templates::built_in();

    let ctx = context(MailKind::VerifyEmail);
    let mail = templates
        .render(MailKind::VerifyEmail, &ctx)
        .expect("renders");
    let original = built_in
        .render(MailKind::VerifyEmail, &ctx)
        .expect("renders");
    assert_eq!(mail.text, format!("Code:\n{TOKEN}\n"));
    assert_eq!(mail.subject, original.subject);
    assert_eq!(mail.html, original.html);
    for kind in [MailKind::ResetPassword, MailKind::EmailChanged] {
        let ctx = context(kind);
        assert_eq!(
            templates.render(kind, &ctx).ok(),
            built_in.render(kind, &ctx).ok()
        );
    }
}

#[test]
fn an_html_override_is_escaped_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "reset_password.html", "<p>{{ username }}</p>");
    let templates = Templates::load(Some(dir.path())).expect("loads");
    let mut ctx = context(MailKind::ResetPassword);
    ctx.username = Some("<b>x</b>".to_owned());
    let mail = templates
        .render(MailKind::ResetPassword, &ctx)
        .expect("renders");
    assert_eq!(
        mail.html.as_deref(),
        Some("<p>&lt;b&gt;x&lt;&#x2f;b&gt;</p>\n")
    );
}

#[test]
fn a_syntax_error_fails_the_load_naming_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "reset_password.html",
        "<p>\nfine\n{% if %}\n</p>\n",
    );
    let message = load_err(dir.path());
    let file = dir.path().join("reset_password.html");
    assert!(
        message.starts_with(&format!("mail template {}, line 3: ", file.display())),
        "{message}"
    );
}

#[test]
fn an_unknown_variable_fails_the_load_naming_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "email_changed.txt", "Hi,\n{{ new_address }}\n");
    let message = load_err(dir.path());
    let file = dir.path().join("email_changed.txt");
    assert!(
        message.starts_with(&format!("mail template {}, line 2: ", file.display())),
        "{message}"
    );
    assert!(message.contains("undefined"), "{message}");
}

#[test]
fn a_runaway_override_runs_out_of_fuel() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "verify_email.txt",
        "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
    );
    let message = load_err(dir.path());
    assert!(message.contains("fuel"), "{message}");

    write(
        dir.path(),
        "verify_email.txt",
        "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    );
    let message = load_err(dir.path());
    assert!(message.contains("verify_email.txt, line 1"), "{message}");
    assert!(message.contains("recursion limit"), "{message}");
}

#[test]
fn a_missing_directory_fails_the_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope");
    let error = Templates::load(Some(&missing)).expect_err("no such directory");
    assert!(matches!(error, TemplateError::Dir { .. }), "{error}");
}

#[test]
fn link_keeps_the_path_and_query_of_app_url_and_encodes_the_token() {
    let url = |s: &str| Url::parse(s).expect("valid url");
    assert_eq!(
        link(&url("https://app.example/base"), "verify-email", "T"),
        "https://app.example/base/verify-email?token=T"
    );
    assert_eq!(
        link(&url("https://app.example/base/"), "/reset-password", "T"),
        "https://app.example/base/reset-password?token=T"
    );
    assert_eq!(
        link(&url("https://app.example"), "verify-email", "T"),
        "https://app.example/verify-email?token=T"
    );
    assert_eq!(
        link(
            &url("https://app.example/b?lang=en"),
            "verify-email",
            "a b&c=d/+é"
        ),
        "https://app.example/b/verify-email?lang=en&token=a+b%26c%3Dd%2F%2B%C3%A9"
    );
}

#[test]
fn durations_read_naturally() {
    assert_eq!(duration(1), "1 minute");
    assert_eq!(duration(60), "60 minutes");
    assert_eq!(duration(90), "90 minutes");
    assert_eq!(duration(120), "2 hours");
    assert_eq!(duration(24 * 60), "24 hours");
}
