//! Which address a request comes from: the socket peer, or behind trusted proxies the
//! right-most `X-Forwarded-For` hop that is not itself a trusted proxy.
//!
//! The header is walked from the right (the hop our own proxy wrote) towards the left (what
//! the client wrote), and the walk stops at the first hop that is not a trusted proxy:
//! nothing to its left is ever read, so whatever a client prepends, well-formed or not, can
//! neither choose its address nor push it into someone else's bucket. A hop that is not an
//! address (`unknown`, garbage, non-ASCII bytes) reached before any untrusted hop ends the
//! walk too: nobody can say who is to its left, so the request is charged to the trusted
//! hop that handed it over (the nearest proxy), never to an address read beyond it. A
//! correctly configured proxy appends its peer's address and never gets there.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;

/// Resolves the client address of a request from the peer and `TRUSTED_PROXIES`.
pub struct ClientIpResolver {
    trusted: Vec<IpNet>,
}

/// One `X-Forwarded-For` entry, as read from the right.
enum Hop {
    Address(IpAddr),
    Malformed,
}

impl ClientIpResolver {
    /// A resolver that believes `X-Forwarded-For` only from peers inside `trusted`.
    pub fn new(trusted: Vec<IpNet>) -> Self {
        Self { trusted }
    }

    /// Whether `ip` is inside a trusted range. An IPv4 address also matches a range
    /// written in its IPv4-mapped IPv6 form (`::ffff:10.0.0.1`, `::ffff:10.0.0.0/120`), as
    /// a dual-stack listener shows it: both forms name one peer.
    fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        let mapped = match ip {
            IpAddr::V4(v4) => Some(IpAddr::V6(v4.to_ipv6_mapped())),
            IpAddr::V6(_) => None,
        };
        self.trusted
            .iter()
            .any(|net| net.contains(&ip) || mapped.is_some_and(|m| net.contains(&m)))
    }

    /// The client address of a request that arrived from `peer` with `headers`.
    pub fn resolve(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer.ip());
        if !self.is_trusted(peer) {
            return peer;
        }
        // `client` is always the nearest hop known to be an address; it starts at the peer.
        let mut client = peer;
        for hop in forwarded_hops_from_the_right(headers) {
            match hop {
                Hop::Address(ip) => {
                    client = canonical(ip);
                    if !self.is_trusted(client) {
                        break;
                    }
                }
                // The nearest trusted hop wrote something we cannot read: stop there.
                Hop::Malformed => break,
            }
        }
        client
    }
}

/// The entries of every `X-Forwarded-For` line, right-most (nearest) first, lazily, so a
/// long header costs only the hops actually walked. Empty list elements are skipped, as
/// RFC 9110 (5.6.1) asks of recipients; an entry may carry a port (`192.0.2.1:443`,
/// `[2001:db8::1]:443`), as some proxies write it.
fn forwarded_hops_from_the_right(headers: &HeaderMap) -> impl Iterator<Item = Hop> + '_ {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .rev()
        .flat_map(|value| value.as_bytes().split(|b| *b == b',').rev())
        .filter_map(|raw| {
            let Ok(text) = std::str::from_utf8(raw) else {
                return Some(Hop::Malformed);
            };
            let text = text.trim_matches([' ', '\t']);
            if text.is_empty() {
                return None;
            }
            let ip = text
                .parse::<IpAddr>()
                .or_else(|_| text.parse::<SocketAddr>().map(|s| s.ip()));
            Some(ip.map_or(Hop::Malformed, Hop::Address))
        })
}

/// The address an IPv4-mapped IPv6 address stands for; any other address unchanged.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 5555)
    }

    fn resolver(trusted: &[&str]) -> ClientIpResolver {
        ClientIpResolver::new(trusted.iter().map(|net| net.parse().unwrap()).collect())
    }

    /// The client address a request from `from` with these header lines is charged to,
    /// behind the proxies in `trusted`.
    fn client(trusted: &[&str], from: &str, xff: &[&str]) -> String {
        resolver(trusted)
            .resolve(peer(from), &headers(xff))
            .to_string()
    }

    const PRIVATE: &[&str] = &["10.0.0.0/8"];

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        assert_eq!(client(&[], "203.0.113.9", &["1.2.3.4"]), "203.0.113.9");
    }

    #[test]
    fn a_trusted_proxy_passes_the_client_on() {
        assert_eq!(
            client(PRIVATE, "10.0.0.2", &["198.51.100.7"]),
            "198.51.100.7"
        );
    }

    #[test]
    fn a_spoofed_left_entry_is_skipped_in_favour_of_the_last_untrusted_hop() {
        let xff = ["6.6.6.6, 198.51.100.7", "10.0.0.3"];
        assert_eq!(client(PRIVATE, "10.0.0.2", &xff), "198.51.100.7");
    }

    #[test]
    fn a_malformed_header_leaves_the_peer() {
        assert_eq!(client(PRIVATE, "10.0.0.2", &["not-an-ip"]), "10.0.0.2");
    }

    #[test]
    fn a_malformed_hop_left_of_the_client_is_never_read() {
        for xff in [
            "garbage, 203.0.113.5",
            "unknown,203.0.113.5",
            "1.2.3.4.5, 203.0.113.5",
            "garbage, 203.0.113.5, 10.0.0.3",
        ] {
            assert_eq!(client(PRIVATE, "10.0.0.2", &[xff]), "203.0.113.5", "{xff}");
        }
        // On a separate header line, and as bytes that are not even text.
        let split = ["garbage", "203.0.113.5"];
        assert_eq!(client(PRIVATE, "10.0.0.2", &split), "203.0.113.5");
        let mut h = HeaderMap::new();
        h.append(
            "x-forwarded-for",
            http::HeaderValue::from_bytes(b"\xff\xfe, 203.0.113.5").unwrap(),
        );
        let ip = resolver(PRIVATE).resolve(peer("10.0.0.2"), &h);
        assert_eq!(ip.to_string(), "203.0.113.5");
    }

    #[test]
    fn a_malformed_hop_among_trusted_proxies_is_the_boundary() {
        // 10.0.0.3 (trusted) wrote garbage: the request is charged to 10.0.0.3, and the
        // address to the left of the garbage is not believed.
        let xff = ["198.51.100.7, garbage, 10.0.0.3"];
        assert_eq!(client(PRIVATE, "10.0.0.2", &xff), "10.0.0.3");
        let xff = ["198.51.100.7, garbage"];
        assert_eq!(client(PRIVATE, "10.0.0.2", &xff), "10.0.0.2");
    }

    #[test]
    fn empty_elements_are_skipped_and_ports_are_dropped() {
        for (xff, expected) in [
            ("203.0.113.5, ,", "203.0.113.5"),
            (",203.0.113.5", "203.0.113.5"),
            ("203.0.113.5:4711", "203.0.113.5"),
            ("[2001:db8::7]:443, 10.0.0.3:80", "2001:db8::7"),
        ] {
            assert_eq!(client(PRIVATE, "10.0.0.2", &[xff]), expected, "{xff}");
        }
    }

    #[test]
    fn a_chain_of_trusted_proxies_only_ends_at_its_left_most_hop() {
        let xff = ["10.0.0.4, 10.0.0.3"];
        assert_eq!(client(PRIVATE, "10.0.0.2", &xff), "10.0.0.4");
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_proxies() {
        let from = "::ffff:127.0.0.1";
        assert_eq!(client(&["127.0.0.1/32"], from, &["192.0.2.1"]), "192.0.2.1");
    }

    #[test]
    fn proxies_written_in_ipv4_mapped_form_match_ipv4_peers() {
        for trusted in ["::ffff:10.0.0.2/128", "::ffff:10.0.0.0/120"] {
            for from in ["10.0.0.2", "::ffff:10.0.0.2"] {
                assert_eq!(
                    client(&[trusted], from, &["198.51.100.7"]),
                    "198.51.100.7",
                    "{trusted} from {from}"
                );
            }
            // A hop in the chain, too, and only the range written.
            let xff = ["198.51.100.7, 10.0.0.3"];
            assert_eq!(
                client(&[trusted, "10.0.0.2/32"], "10.0.0.2", &xff),
                if trusted.ends_with("/120") {
                    "198.51.100.7"
                } else {
                    "10.0.0.3"
                },
                "{trusted}"
            );
            assert_eq!(
                client(&[trusted], "10.1.0.2", &["198.51.100.7"]),
                "10.1.0.2"
            );
        }
    }
}
