//! The shared readers every section uses: one variable in, a typed value or a
//! `ConfigError` naming that variable out.

use std::time::Duration;

use super::ConfigError;

/// A key lookup that has already trimmed its values and treats empty ones as unset
/// (`Settings::from_lookup` builds it), so a section never sees `""`.
pub(super) trait Lookup: Fn(&str) -> Option<String> {}

impl<F: Fn(&str) -> Option<String>> Lookup for F {}

pub(super) fn parse<T: std::str::FromStr>(
    get: &impl Lookup,
    var: &'static str,
    default: T,
) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match get(var) {
        None => Ok(default),
        Some(raw) => raw
            .parse()
            .map_err(|e| ConfigError::new(var, format!("{raw:?}: {e}"))),
    }
}

/// A value with no default: unset is `None`.
pub(super) fn optional<T: std::str::FromStr>(
    get: &impl Lookup,
    var: &'static str,
) -> Result<Option<T>, ConfigError>
where
    T::Err: std::fmt::Display,
{
    get(var)
        .map(|raw| {
            raw.parse()
                .map_err(|e| ConfigError::new(var, format!("{raw:?}: {e}")))
        })
        .transpose()
}

pub(super) fn positive<T>(
    get: &impl Lookup,
    var: &'static str,
    default: T,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + Default + PartialEq,
    T::Err: std::fmt::Display,
{
    let value = parse(get, var, default)?;
    if value == T::default() {
        return Err(ConfigError::new(var, "must be greater than zero"));
    }
    Ok(value)
}

pub(super) fn boolean(
    get: &impl Lookup,
    var: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    match get(var).map(|v| v.to_ascii_lowercase()).as_deref() {
        None => Ok(default),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some("0" | "false" | "no" | "off") => Ok(false),
        Some(other) => Err(ConfigError::new(
            var,
            format!("expected true or false, got {other:?}"),
        )),
    }
}

/// Accepts `90`, `90s`, `15m`, `7d`, `1h 30m`: a bare number is seconds.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    if let Ok(secs) = raw.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(raw).map_err(|e| e.to_string())
}

/// A duration of at most `i32::MAX` seconds. `nonzero_duration` and `optional_duration`
/// wrap it alike on purpose: they differ only in what zero means (refused, or off).
pub(super) fn duration(
    get: &impl Lookup,
    var: &'static str,
    default: &str,
) -> Result<Duration, ConfigError> {
    let raw = get(var).unwrap_or_else(|| default.to_owned());
    let value = parse_duration(&raw).map_err(|e| ConfigError::new(var, format!("{raw:?}: {e}")))?;
    // Token lifetimes are sent as 32-bit seconds (`expiresIn: Int!`).
    if value.as_secs() > i32::MAX as u64 {
        return Err(ConfigError::new(var, "is too long"));
    }
    Ok(value)
}

/// A duration of at least a second.
pub(super) fn nonzero_duration(
    get: &impl Lookup,
    var: &'static str,
    default: &str,
) -> Result<Duration, ConfigError> {
    let value = duration(get, var, default)?;
    if value.as_secs() == 0 {
        return Err(ConfigError::new(var, "must be at least one second"));
    }
    Ok(value)
}

/// A duration where `0` means "off".
pub(super) fn optional_duration(
    get: &impl Lookup,
    var: &'static str,
    default: &str,
) -> Result<Option<Duration>, ConfigError> {
    Ok(Some(duration(get, var, default)?).filter(|d| !d.is_zero()))
}

/// A comma-separated list; blanks around and between items are dropped.
pub(super) fn list(raw: Option<String>) -> Vec<String> {
    raw.map(|r| {
        r.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

/// One of a fixed set of words; unset takes `default`. Each entry is a value and the
/// words that name it, the first of them the one a refusal lists.
pub(super) fn choice<T: Copy>(
    get: &impl Lookup,
    var: &'static str,
    default: T,
    choices: &[(T, &[&str])],
) -> Result<T, ConfigError> {
    let Some(raw) = get(var) else {
        return Ok(default);
    };
    if let Some(&(value, _)) = choices
        .iter()
        .find(|(_, words)| words.contains(&raw.as_str()))
    {
        return Ok(value);
    }
    let names: Vec<&str> = choices.iter().map(|(_, words)| words[0]).collect();
    let expected = match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => names.concat(),
    };
    Err(ConfigError::new(
        var,
        format!("expected {expected}, got {raw:?}"),
    ))
}
