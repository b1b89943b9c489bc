//! SeaORM entities: the rows of `users`, `sessions`, `refresh_tokens`, `email_tokens`,
//! `mail_outbox` and `signing_keys`.
//! Never sent to clients.
//! They read alike by design: SeaORM's derive shape, one file per table.

pub mod email_token;
pub mod mail_outbox;
pub mod refresh_token;
pub mod session;
pub mod signing_key;
pub mod user;
