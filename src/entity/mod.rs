//! SeaORM entities: the rows of `users`, `sessions` and `refresh_tokens`. Never sent to clients.

pub mod refresh_token;
pub mod session;
pub mod user;
