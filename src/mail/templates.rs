//! The wording of every mail: Jinja templates (minijinja), built in and overridable.
//!
//! Operators want their own wording and branding without a rebuild, so each [`MailKind`] is
//! three templates, `<kind>.subject.txt`, `<kind>.txt` and `<kind>.html` (the files beside
//! this module, embedded), and a file of the same name in `MAIL_TEMPLATES_DIR` replaces one.
//! They are read once, at start-up, and every one is parsed and rendered there with sample
//! contexts: a broken override stops the start naming its file and line, instead of failing
//! the first real mail, which would sit in the outbox.
//!
//! A template sees the fields of [`MailContext`] and one filter, `duration`, that words a
//! number of minutes ("60 minutes", "24 hours"). An unknown variable is an error (strict
//! undefined), and fuel bounds the work of one render, so an override cannot loop forever.
//! The `.html` templates escape every value, by that name, overrides included; subjects and
//! text bodies are plain text, and a subject is made one line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use minijinja::Environment;
use url::Url;

use super::Mail;

mod environment;
mod overrides;
#[cfg(test)]
mod tests;

use environment::environment;
use overrides::{read_override, warn_unknown_files};

/// Which mail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailKind {
    VerifyEmail,
    ResetPassword,
    /// The token for a new address, sent to that address.
    ChangeEmail,
    /// The notice of a requested change, sent to the old address; no token.
    EmailChanged,
}

impl MailKind {
    pub const ALL: [MailKind; 4] = [
        MailKind::VerifyEmail,
        MailKind::ResetPassword,
        MailKind::ChangeEmail,
        MailKind::EmailChanged,
    ];

    /// The stem of its template files.
    pub fn name(self) -> &'static str {
        match self {
            MailKind::VerifyEmail => "verify_email",
            MailKind::ResetPassword => "reset_password",
            MailKind::ChangeEmail => "change_email",
            MailKind::EmailChanged => "email_changed",
        }
    }
}

/// What a template may use. Every field is a plain string; the HTML template is
/// auto-escaped, the text and subject are not HTML.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct MailContext {
    /// The recipient's address.
    pub to: String,
    pub username: Option<String>,
    /// The front-end link with `?token=...` (none for [`MailKind::EmailChanged`]).
    pub link: Option<String>,
    /// The bare token (none for [`MailKind::EmailChanged`]).
    pub token: Option<String>,
    /// The token's lifetime (0 for [`MailKind::EmailChanged`]).
    pub expires_in_minutes: i64,
    /// [`MailKind::EmailChanged`]: the address the account is moving to.
    pub new_email: Option<String>,
    pub app_url: String,
}

/// A template that could not be read, parsed or rendered.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("MAIL_TEMPLATES_DIR {}: {source}", .dir.display())]
    Dir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("mail template {}: {source}", .file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    /// `file` is the override's path, or `built-in <name>`.
    #[error("mail template {file}{}: {reason}", .line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Invalid {
        file: String,
        line: Option<usize>,
        reason: String,
    },
}

/// The twelve templates, ready to render.
pub struct Templates {
    env: Environment<'static>,
    /// Where each template came from, for errors: the override's path or `built-in <name>`.
    origins: HashMap<&'static str, String>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("origins", &self.origins)
            .finish()
    }
}

impl Templates {
    /// The built-in templates alone.
    pub fn built_in() -> Self {
        Self::load(None).expect("the built-in mail templates parse and render (tested)")
    }

    /// Built-ins, each overridden by `<kind>.subject.txt` / `<kind>.txt` / `<kind>.html` in
    /// `dir` when that file exists; other files there are ignored with a warning.
    pub fn load(dir: Option<&Path>) -> Result<Self, TemplateError> {
        if let Some(dir) = dir {
            warn_unknown_files(dir)?;
        }
        let mut env = environment();
        let mut origins = HashMap::new();
        for (name, built_in) in BUILT_IN {
            let file = dir.map(|dir| dir.join(name));
            let source = match &file {
                Some(file) => read_override(file)?,
                None => None,
            };
            let (origin, added) = match (file, source) {
                (Some(file), Some(source)) => (
                    file.display().to_string(),
                    env.add_template_owned(name, source),
                ),
                _ => (format!("built-in {name}"), env.add_template(name, built_in)),
            };
            added.map_err(|e| invalid(&origin, &e))?;
            origins.insert(name, origin);
        }
        let templates = Self { env, origins };
        for kind in MailKind::ALL {
            for ctx in samples() {
                templates.render(kind, &ctx)?;
            }
        }
        Ok(templates)
    }

    /// The mail of `kind` for `ctx`.
    pub fn render(&self, kind: MailKind, ctx: &MailContext) -> Result<Mail, TemplateError> {
        let subject = one_line(&self.render_part(kind, Part::Subject, ctx)?);
        let text = self.render_part(kind, Part::Text, ctx)?;
        let html = self.render_part(kind, Part::Html, ctx)?;
        Ok(Mail {
            to: ctx.to.clone(),
            subject,
            text: ending_in_newline(&text),
            html: Some(ending_in_newline(&html)),
        })
    }

    fn render_part(
        &self,
        kind: MailKind,
        part: Part,
        ctx: &MailContext,
    ) -> Result<String, TemplateError> {
        let (name, _) = BUILT_IN[kind as usize * 3 + part as usize];
        let origin = || self.origins.get(name).map_or(name, String::as_str);
        let rendered = self
            .env
            .get_template(name)
            .and_then(|template| template.render(ctx))
            .map_err(|e| invalid(origin(), &e))?;
        if rendered.len() > MAX_RENDERED_BYTES {
            return Err(TemplateError::Invalid {
                file: origin().to_owned(),
                line: None,
                reason: format!(
                    "renders {} bytes, more than the {MAX_RENDERED_BYTES} a part may have",
                    rendered.len()
                ),
            });
        }
        Ok(rendered)
    }
}

/// `app_url` + `path` (joined with exactly one `/`, keeping any path `app_url` has) with
/// `token` as the `token` query parameter (form-encoded, after any query `app_url` has).
pub fn link(app_url: &Url, path: &str, token: &str) -> String {
    let mut url = app_url.clone();
    let joined = format!(
        "{}/{}",
        url.path().trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    url.set_path(&joined);
    url.query_pairs_mut().append_pair("token", token);
    url.into()
}

/// The part of a mail a template makes; its discriminant is its column in [`BUILT_IN`].
#[derive(Clone, Copy)]
enum Part {
    Subject = 0,
    Text = 1,
    Html = 2,
}

macro_rules! built_in {
    ($($file:literal),* $(,)?) => {
        [$(($file, include_str!(concat!("templates/", $file)))),*]
    };
}

/// (name, source), three per kind in the order of [`MailKind::ALL`] and [`Part`].
const BUILT_IN: [(&str, &str); 12] = built_in![
    "verify_email.subject.txt",
    "verify_email.txt",
    "verify_email.html",
    "reset_password.subject.txt",
    "reset_password.txt",
    "reset_password.html",
    "change_email.subject.txt",
    "change_email.txt",
    "change_email.html",
    "email_changed.subject.txt",
    "email_changed.txt",
    "email_changed.html",
];

/// A rendered part larger than this is a broken template, not a mail.
const MAX_RENDERED_BYTES: usize = 256 * 1024;
/// A longer subject is cut; mail clients show far less.
const MAX_SUBJECT_CHARS: usize = 200;

fn invalid(origin: &str, e: &minijinja::Error) -> TemplateError {
    TemplateError::Invalid {
        file: origin.to_owned(),
        line: e.line(),
        reason: match e.detail() {
            Some(detail) => format!("{}: {detail}", e.kind()),
            None => e.kind().to_string(),
        },
    }
}

/// What every template is rendered with at load: every field set, then every one empty.
fn samples() -> [MailContext; 2] {
    let app_url = "https://app.example/";
    let token = "SampleToken0123456789abcdefghijklmnopqrstu";
    let full = MailContext {
        to: "someone@example.com".to_owned(),
        username: Some("someone".to_owned()),
        link: Url::parse(app_url)
            .ok()
            .map(|url| link(&url, "verify-email", token)),
        token: Some(token.to_owned()),
        expires_in_minutes: 60,
        new_email: Some("someone.else@example.com".to_owned()),
        app_url: app_url.to_owned(),
    };
    let sparse = MailContext {
        to: full.to.clone(),
        app_url: full.app_url.clone(),
        ..MailContext::default()
    };
    [full, sparse]
}

/// Trimmed, each control character a space, at most [`MAX_SUBJECT_CHARS`] characters.
fn one_line(subject: &str) -> String {
    let spaced: String = subject
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                ' '
            } else {
                c
            }
        })
        .collect();
    let capped: String = spaced.trim().chars().take(MAX_SUBJECT_CHARS).collect();
    capped.trim_end().to_owned()
}

/// `body` with trailing whitespace replaced by one newline, however the file ended.
fn ending_in_newline(body: &str) -> String {
    let mut body = body.trim_end().to_owned();
    body.push('\n');
    body
}
