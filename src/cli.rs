//! The command line: `serve` (default), `migrate up|down|status|fresh`,
//! `keys list|rotate|retire|reseal`, `schema`.

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "auth-server",
    version,
    about = "A GraphQL authentication server."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations and serve (the default).
    Serve,
    /// Manage the database schema.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Manage the keys access tokens are signed with (stored keys: KEY_ENCRYPTION_KEY).
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Print the GraphQL schema (SDL) to stdout.
    Schema,
}

#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Every stored key: its kid, algorithm, state and schedule.
    List {
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Make a key of JWT_ALGORITHM: published at once, signing after
    /// SIGNING_KEYS_RELOAD + JWKS_MAX_AGE; the current key stops signing then.
    Rotate,
    /// Stop a key signing now (a pending key is cancelled); it stays published until the
    /// tokens it signed have expired.
    Retire {
        /// The key's kid, as `keys list` shows it. A kid is base64url, so it may begin
        /// with `-`: it is taken as the kid, not as an option.
        #[arg(allow_hyphen_values = true)]
        kid: String,
    },
    /// Seal every stored private key again under NEW_KEY_ENCRYPTION_KEY (read from the
    /// environment, never the command line), all in one transaction; then give every
    /// instance the new value as KEY_ENCRYPTION_KEY and restart it.
    Reseal,
}

#[derive(Debug, Subcommand)]
pub enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// Roll back the last applied migration (or `--steps N`).
    Down {
        #[arg(long, default_value_t = 1)]
        steps: u32,
    },
    /// List migrations and whether each is applied.
    Status,
    /// Drop every table and apply all migrations again (destroys data).
    Fresh,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn keys_retire_takes_a_kid_that_begins_with_a_hyphen() {
        let kid = "-P3q0rW4bq9oM3gdKXAZQx5lBx1m0QMiwyHBsIYGrNk";
        let cli = Cli::try_parse_from(["auth-server", "keys", "retire", kid]).unwrap();
        match cli.command {
            Some(Command::Keys {
                action: KeysAction::Retire { kid: parsed },
            }) => assert_eq!(parsed, kid),
            other => panic!("{other:?}"),
        }
    }
}
