//! The engine's settings: what a template may do, and how much.

use minijinja::{AutoEscape, Environment, UndefinedBehavior};

/// Instructions one render may execute; the built-ins use a few dozen.
const FUEL: u64 = 50_000;
/// Nesting of blocks, includes and macros; minijinja's default is 500.
const RECURSION_LIMIT: usize = 100;

pub(super) fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(RECURSION_LIMIT);
    // A block tag takes its line with it, so `{% if %}` leaves no blank line in a text body.
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env.add_filter("duration", duration);
    env
}

/// "1 minute", "90 minutes", "2 hours", "24 hours": whole hours from two hours on.
pub(super) fn duration(minutes: i64) -> String {
    let (n, unit) = if minutes >= 120 && minutes % 60 == 0 {
        (minutes / 60, "hour")
    } else {
        (minutes, "minute")
    };
    let plural = if n == 1 { "" } else { "s" };
    format!("{n} {unit}{plural}")
}
