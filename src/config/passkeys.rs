//! The passkeys section: who the server is to an authenticator. `WEBAUTHN_RP_ID` is the
//! relying party's id, the domain passkeys are bound to (the host of `APP_URL` unless
//! set); `WEBAUTHN_ORIGINS` the front-end origins a ceremony may come from (the origin of
//! `APP_URL` unless set; comma-separated); `WEBAUTHN_RP_NAME` the name authenticators show.
//! Every origin's host must be the id or a subdomain of it, as browsers require: a start
//! with any other fails here rather than at the first passkey. When neither is set and
//! `APP_URL`'s host is an IP address (which no browser takes as an id), passkeys are off,
//! with a warning.

use url::Url;

use super::ConfigError;
use super::parse::{Lookup, list};

const DEFAULT_RP_NAME: &str = "auth-server";

#[derive(Clone, Debug)]
pub struct PasskeySettings {
    /// The relying-party id: a domain, without scheme or port (`example.com`).
    pub rp_id: String,
    /// The origins (`scheme://host[:port]`) whose ceremonies are accepted; exact matches.
    pub origins: Vec<Url>,
    /// Shown by authenticators beside the account name.
    pub rp_name: String,
}

impl PasskeySettings {
    /// `app_url` is the validated `APP_URL`, the default for both the id and the origin.
    /// `None`: passkeys are off (see the module).
    pub(super) fn read(
        get: &impl Lookup,
        app_url: &Url,
        warnings: &mut Vec<String>,
    ) -> Result<Option<Self>, ConfigError> {
        let explicit_id = get("WEBAUTHN_RP_ID");
        let app_host_is_ip = matches!(
            app_url.host(),
            Some(url::Host::Ipv4(_) | url::Host::Ipv6(_))
        );
        if explicit_id.is_none() && app_host_is_ip {
            warnings.push(format!(
                "passkeys are off: APP_URL's host {} is an IP address, which browsers refuse as \
                 a WebAuthn relying-party id; set WEBAUTHN_RP_ID (and WEBAUTHN_ORIGINS)",
                app_url.host_str().unwrap_or_default()
            ));
            return Ok(None);
        }
        let origins = match get("WEBAUTHN_ORIGINS") {
            None => vec![origin_of(app_url)],
            Some(raw) => {
                let mut origins = Vec::new();
                for item in list(Some(raw)) {
                    origins.push(parse_origin(&item)?);
                }
                origins
            }
        };
        let rp_id = match explicit_id {
            Some(id) => parse_rp_id(&id)?,
            None => app_url
                .host_str()
                .map(str::to_owned)
                .ok_or_else(|| ConfigError::new("APP_URL", "has no host for WEBAUTHN_RP_ID"))?,
        };
        for origin in &origins {
            let host = origin.host_str().unwrap_or_default();
            if host != rp_id && !host.ends_with(&format!(".{rp_id}")) {
                return Err(ConfigError::new(
                    "WEBAUTHN_ORIGINS",
                    format!(
                        "{} is not on {rp_id} (WEBAUTHN_RP_ID) or a subdomain of it: browsers \
                         refuse such a ceremony",
                        origin.as_str().trim_end_matches('/')
                    ),
                ));
            }
        }
        // What webauthn-rs itself refuses (an id it cannot use with an origin), refused now.
        for origin in &origins {
            webauthn_rs::prelude::WebauthnBuilder::new(&rp_id, origin)
                .and_then(webauthn_rs::prelude::WebauthnBuilder::build)
                .map_err(|e| {
                    ConfigError::new(
                        "WEBAUTHN_RP_ID",
                        format!("{rp_id} with origin {origin}: {e}"),
                    )
                })?;
        }
        let rp_name = get("WEBAUTHN_RP_NAME").unwrap_or_else(|| DEFAULT_RP_NAME.to_owned());
        if rp_name.chars().count() > 64 || rp_name.chars().any(char::is_control) {
            return Err(ConfigError::new(
                "WEBAUTHN_RP_NAME",
                "is one line of at most 64 characters",
            ));
        }
        Ok(Some(Self {
            rp_id,
            origins,
            rp_name,
        }))
    }
}

/// `scheme://host[:port]` of `url`.
fn origin_of(url: &Url) -> Url {
    let mut origin = url.clone();
    origin.set_path("/");
    origin.set_query(None);
    origin.set_fragment(None);
    origin
}

/// An `http(s)` origin: no path, query, fragment or credentials.
fn parse_origin(raw: &str) -> Result<Url, ConfigError> {
    let bad = |why: &str| {
        ConfigError::new(
            "WEBAUTHN_ORIGINS",
            format!("{raw:?} {why} (expected https://host[:port], comma-separated)"),
        )
    };
    let url = Url::parse(raw).map_err(|e| bad(&format!("is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("is not http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(bad("is not an origin: it has a path, query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("carries credentials"));
    }
    Ok(url)
}

/// A domain name: lower-case letters, digits, `-` and `.`; no scheme, port or IP address
/// (browsers refuse an IP address as an id).
fn parse_rp_id(raw: &str) -> Result<String, ConfigError> {
    let id = raw.to_ascii_lowercase();
    let labels_ok = id.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    let ip = id.parse::<std::net::IpAddr>().is_ok();
    if !labels_ok || ip || id.len() > 253 {
        return Err(ConfigError::new(
            "WEBAUTHN_RP_ID",
            format!("{raw:?} is not a domain name (example.com; no scheme, port or IP address)"),
        ));
    }
    Ok(id)
}
