//! One integration-test binary: every test starts the real server on a random port, on a
//! fresh database, and speaks GraphQL over HTTP.

mod fixtures;
mod helpers;

mod adversarial_flooding;
mod adversarial_inputs;
mod adversarial_nesting;
mod adversarial_tokens;
mod cli;
mod connections;
mod drain;
mod durability;
mod error_codes;
mod http_surface;
mod keys;
mod lifecycle;
mod login;
mod logout;
mod mail_outbox;
mod mail_sealing;
mod me;
mod metrics;
mod mfa;
mod migration_race;
mod migrations;
mod passkeys;
mod production_exposure;
mod purge;
mod query_plans;
mod rate_limits;
mod refresh;
mod refresh_chains;
mod register;
mod resilience;
mod rotations;
mod schema;
mod server_process;
mod sessions;
mod shared_limits;
mod smtp;
mod storage_failures;
mod tokens;
mod typed_client;
