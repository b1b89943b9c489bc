//! SeaORM entities: the rows of `users`, `sessions`, `refresh_tokens`, `email_tokens`,
//! `mail_outbox`, `signing_keys` and `security_events`.
//! Never sent to clients.
//! They read alike by design: SeaORM's derive shape, one file per table.

pub mod email_token;
pub mod mail_outbox;
pub mod refresh_token;
pub mod security_event;
pub mod session;
pub mod signing_key;
pub mod user;
