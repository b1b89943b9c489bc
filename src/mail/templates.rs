//! STUB (replaced by the `templates` branch): the API the flows code against.

use std::path::Path;

use super::Mail;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailKind {
    VerifyEmail,
    ResetPassword,
    ChangeEmail,
    EmailChanged,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct MailContext {
    pub to: String,
    pub username: Option<String>,
    pub link: Option<String>,
    pub token: Option<String>,
    pub expires_in_minutes: i64,
    pub new_email: Option<String>,
    pub app_url: String,
}

pub struct Templates;

#[derive(Debug, thiserror::Error)]
#[error("template: {0}")]
pub struct TemplateError(String);

impl Templates {
    pub fn built_in() -> Self {
        Self
    }

    pub fn load(_dir: Option<&Path>) -> Result<Self, TemplateError> {
        Ok(Self)
    }

    pub fn render(&self, kind: MailKind, ctx: &MailContext) -> Result<Mail, TemplateError> {
        Ok(Mail {
            to: ctx.to.clone(),
            subject: format!("{kind:?}"),
            text: format!(
                "{}\n\n{}\n",
                ctx.link.clone().unwrap_or_default(),
                ctx.token.clone().unwrap_or_default()
            ),
            html: None,
        })
    }
}

pub fn link(app_url: &url::Url, path: &str, token: &str) -> String {
    let mut url = app_url.clone();
    let base = url.path().trim_end_matches('/').to_owned();
    url.set_path(&format!("{base}/{path}"));
    url.query_pairs_mut().append_pair("token", token);
    url.to_string()
}
