//! SeaORM entities: the rows of `users`, `sessions`, `refresh_tokens`, `email_tokens`,
//! `mail_outbox`, `signing_keys`, `security_events`, and the second factors'
//! `totp_factors`, `recovery_codes` and `mfa_tickets`, and the passkeys' `passkeys` and
//! `passkey_challenges`.
//! Never sent to clients.
//! They read alike by design: SeaORM's derive shape, one file per table.

pub mod email_token;
pub mod mail_outbox;
pub mod mfa_ticket;
pub mod passkey;
pub mod passkey_challenge;
pub mod recovery_code;
pub mod refresh_token;
pub mod security_event;
pub mod session;
pub mod signing_key;
pub mod totp_factor;
pub mod user;
