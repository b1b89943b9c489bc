//! SeaORM entities: the rows of `users`, `sessions` and `refresh_tokens`. Never sent to clients.
//! They read alike by design: SeaORM's derive shape, one file per table.

pub mod refresh_token;
pub mod session;
pub mod user;
