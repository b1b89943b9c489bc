//! auth-server: a GraphQL authentication server (register, login, rotating refresh
//! tokens, logout, `me`) on SQLite, MySQL/MariaDB or PostgreSQL.

pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod domain;
pub mod entity;
pub mod error;
pub mod graphql;
pub mod hex;
pub mod http;
pub mod jobs;
pub mod mail;
pub mod metrics;
pub mod migrate;
pub mod nesting;
pub mod startup;
pub mod storage;
pub mod store;
pub mod telemetry;

pub use startup::{Application, Collaborators};
