//! The `mail_outbox` row: a mail written in the transaction of the change it announces,
//! waiting for the worker in `crate::jobs` to send it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mail_outbox")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub recipient: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: Option<String>,
    pub created_at: DateTimeUtc,
    /// Sending attempts that failed so far.
    pub attempts: i32,
    /// Not sent before this instant (the backoff after a failure).
    pub next_attempt_at: DateTimeUtc,
    /// A worker has it until then; past it (the worker died) any worker may take it.
    pub claimed_until: Option<DateTimeUtc>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// The account the mail is about, if any: deleting the account deletes its mails.
    pub user_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
