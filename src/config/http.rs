//! The HTTP section: who may call (CORS, trusted proxies), how much they may send, and
//! how long connections may stay open.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use ipnet::IpNet;

use super::ConfigError;
use super::parse::{Lookup, list, nonzero_duration, optional_duration, positive};

#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// Origins allowed by CORS; `*` allows any; empty allows none.
    pub cors_allowed_origins: Vec<String>,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// `Strict-Transport-Security` max-age; off when `None`.
    pub hsts_max_age: Option<Duration>,
    /// Time a client has to send a complete request head: from the connection's start, or
    /// from the first byte of a later request on a kept-alive connection. Bounds silent and
    /// trickling ("slowloris") connections.
    pub header_read_timeout: Duration,
    /// How long a kept-alive connection may wait idle for its next request; `None` turns
    /// keep-alive off. Longer than a load balancer's idle timeout, so the balancer closes
    /// first and never sends a request into a closing connection.
    pub keep_alive_timeout: Option<Duration>,
    /// Most client connections open at once; at the bound the server stops accepting
    /// until one closes. Lowered at start-up to what the descriptor limit allows.
    pub max_connections: usize,
    /// After SIGTERM, how long `/health` answers 503 while requests are still served, so a
    /// load balancer takes the instance out before its listener closes; `None`: close at
    /// once.
    pub shutdown_drain: Option<Duration>,
}

impl HttpSettings {
    /// A trusted range holding every address is allowed, with a warning.
    pub(super) fn read(get: &impl Lookup, warnings: &mut Vec<String>) -> Result<Self, ConfigError> {
        let trusted_proxies: Vec<IpNet> = list(get("TRUSTED_PROXIES"))
            .iter()
            .map(|p| parse_proxy(p))
            .collect::<Result<_, _>>()?;
        for net in trusted_proxies
            .iter()
            .filter(|net| holds_every_address(net))
        {
            warnings.push(format!(
                "TRUSTED_PROXIES contains {net}, which holds every address: any client can \
                 choose its own address with X-Forwarded-For and escape the per-IP rate \
                 limits; list only your load balancers"
            ));
        }
        Ok(Self {
            cors_allowed_origins: list(get("CORS_ALLOWED_ORIGINS")),
            trusted_proxies,
            max_body_bytes: positive(get, "MAX_BODY_BYTES", 64 * 1024usize)?,
            hsts_max_age: optional_duration(get, "HSTS_MAX_AGE", "0s")?,
            header_read_timeout: nonzero_duration(get, "HTTP_HEADER_READ_TIMEOUT", "10s")?,
            keep_alive_timeout: optional_duration(get, "HTTP_KEEP_ALIVE_TIMEOUT", "75s")?,
            max_connections: positive(get, "HTTP_MAX_CONNECTIONS", 4096usize)?,
            shutdown_drain: optional_duration(get, "SHUTDOWN_DRAIN", "0s")?,
        })
    }
}

/// Whether `net` holds every address of a family: `0.0.0.0/0`, `::/0`, or every IPv4
/// address in IPv4-mapped form (`::ffff:0:0/96` and the ranges around it), which the
/// client-address resolver matches IPv4 peers against too.
fn holds_every_address(net: &IpNet) -> bool {
    let mapped = |v4: Ipv4Addr| IpAddr::V6(v4.to_ipv6_mapped());
    net.prefix_len() == 0
        || (net.contains(&mapped(Ipv4Addr::UNSPECIFIED))
            && net.contains(&mapped(Ipv4Addr::BROADCAST)))
}

/// An address (`10.0.0.1`) or a range (`10.0.0.0/8`).
fn parse_proxy(raw: &str) -> Result<IpNet, ConfigError> {
    raw.parse::<IpNet>()
        .or_else(|_| raw.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| {
            ConfigError::new(
                "TRUSTED_PROXIES",
                format!("{raw:?} is not an IP address or CIDR"),
            )
        })
}
