//! Entry point: parse the command line, read settings, start tracing, hand over.
//! mimalloc is the allocator: see bench/FINDINGS.md (third round).

use std::process::ExitCode;

use auth_server::cli::{Cli, Command, MigrateAction};
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
