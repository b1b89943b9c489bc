//! Entry point: parse the command line, read settings, start tracing, hand over.
//! mimalloc is the allocator: see bench/FINDINGS.md (third round).

use std::process::ExitCode;

use auth_server::cli::{Cli, Command, KeysAction, MigrateAction};
use auth_server::config::Settings;
use auth_server::migrate::{self, Action};
use auth_server::{Application, telemetry};
use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Schema) = cli.command {
        print!("{}", auth_server::graphql::sdl());
        return ExitCode::SUCCESS;
    }
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("auth-server: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(settings.log_format);
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
        Command::Migrate { action } => migrate(settings, action).await,
        Command::Keys { action } => keys(settings, action).await,
        Command::Schema => unreachable!("handled above"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("auth-server: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    let app = Application::build(settings).await?;
    app.run_until_stopped().await?;
    Ok(())
}

async fn migrate(
    settings: Settings,
    action: MigrateAction,
) -> Result<(), Box<dyn std::error::Error>> {
    // Under the same cross-process lock as `serve`'s start-up migrations.
    let action = match action {
        MigrateAction::Up => Action::Up,
        MigrateAction::Down { steps } => Action::Down { steps },
        MigrateAction::Fresh => Action::Fresh,
        MigrateAction::Status => Action::Status,
    };
    for m in migrate::run(&settings.database, action).await? {
        println!("{:<8} {}", m.status, m.name);
    }
    Ok(())
}

async fn keys(settings: Settings, action: KeysAction) -> Result<(), Box<dyn std::error::Error>> {
    use auth_server::auth::tokens::signing::admin;
    use secrecy::ExposeSecret;
    let db = auth_server::db::connect(&settings.database).await?;
    migrate::run(&settings.database, Action::Up).await?;
    let store = auth_server::store::Store::new(db, settings.database.url.expose_secret());
    // At the precision every backend stores, as the server's clock gives it.
    let now = auth_server::clock::SystemClock.now();
    let tokens = &settings.tokens;
    match action {
        KeysAction::List { json } => {
            let keys = admin::list(&store, tokens, now).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&keys)?);
            } else {
                println!(
                    "{:<44} {:<6} {:<10} {:<20} {:<20} PUBLISHED UNTIL",
                    "KID", "ALG", "STATE", "CREATED", "SIGNS FROM"
                );
                for k in keys {
                    println!(
                        "{:<44} {:<6} {:<10} {:<20} {:<20} {}",
                        k.kid,
                        k.algorithm,
                        k.state,
                        short(k.created_at),
                        short(k.activates_at),
                        k.published_until.map_or("-".to_owned(), short)
                    );
                }
            }
        }
        KeysAction::Rotate => {
            let rotated = admin::rotate(&store, tokens, now).await?;
            let key = &rotated.key;
            println!("{}", key.kid);
            eprintln!(
                "made {} ({}): published now, signs from {}",
                key.kid,
                key.algorithm,
                short(key.activates_at)
            );
            if let Some(old) = rotated.replaces {
                eprintln!(
                    "{} stops signing then and stays published until {}",
                    old.kid,
                    old.published_until.map_or("-".to_owned(), short)
                );
            }
        }
        KeysAction::Reseal => {
            let Some(new) = std::env::var("NEW_KEY_ENCRYPTION_KEY")
                .ok()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
            else {
                return Err(
                    "NEW_KEY_ENCRYPTION_KEY is not set: put the new key-encryption key \
                            in the environment (not on the command line)"
                        .into(),
                );
            };
            let resealed = admin::reseal(&store, tokens, new.as_bytes()).await?;
            for kid in &resealed.kids {
                println!("{kid}");
            }
            eprintln!(
                "resealed {} key(s) and {} TOTP secret(s) under NEW_KEY_ENCRYPTION_KEY: set \
                 KEY_ENCRYPTION_KEY to it on every instance and restart them (until then, \
                 running instances keep the keys they hold but cannot load a key rotated \
                 meanwhile, and TOTP codes of the resealed secrets fail)",
                resealed.kids.len(),
                resealed.totp_secrets
            );
            if resealed.totp_unopenable > 0 {
                eprintln!(
                    "{} TOTP secret(s) did not open under KEY_ENCRYPTION_KEY and were left as \
                     they were: their users sign in with a recovery code and enrol again",
                    resealed.totp_unopenable
                );
            }
        }
        KeysAction::Retire { kid } => {
            let key = admin::retire(&store, tokens, &kid, now).await?;
            println!(
                "retired {}: published until {}",
                key.kid,
                key.published_until.map_or("-".to_owned(), short)
            );
        }
    }
    Ok(())
}

/// An instant to the second, UTC, for the operator's eye.
fn short(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}
