//! Tracing set-up: pretty or JSON lines, level from `RUST_LOG` (default `info`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber once; later calls (tests) are ignored.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        // Colour codes only for a person at a terminal, not in files or log collectors
        // (formatting them was also a visible cost of every request's span).
        .with_ansi(std::io::stdout().is_terminal());
    let _ = match format {
        // The target names the source of a line: log collectors select the security
        // events by `"target":"security_event"`.
        LogFormat::Json => builder.with_target(true).json().try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}
