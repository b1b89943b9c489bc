//! Which address a request comes from: the socket peer, or behind trusted proxies the
//! right-most `X-Forwarded-For` entry that is not itself a trusted proxy.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;

pub struct ClientIpResolver {
    trusted: Vec<IpNet>,
}

impl ClientIpResolver {
    pub fn new(trusted: Vec<IpNet>) -> Self {
        Self { trusted }
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    pub fn resolve(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer.ip());
        if !self.is_trusted(peer) {
            return peer;
        }
        // Walk the chain from the nearest hop outwards; the first untrusted hop is the client.
        let hops: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .map(|hop| hop.parse::<IpAddr>().ok())
            .collect::<Option<Vec<_>>>()
            // A malformed header is not believed at all.
            .unwrap_or_default();
        let mut client = peer;
        for hop in hops.into_iter().rev().map(canonical) {
            client = hop;
            if !self.is_trusted(hop) {
                break;
            }
        }
        client
    }
}

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

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let r = ClientIpResolver::new(vec![]);
        let ip = r.resolve(peer("203.0.113.9"), &headers(&["1.2.3.4"]));
        assert_eq!(ip.to_string(), "203.0.113.9");
    }

    #[test]
    fn a_trusted_proxy_passes_the_client_on() {
        let r = ClientIpResolver::new(vec!["10.0.0.0/8".parse().unwrap()]);
        let ip = r.resolve(peer("10.0.0.2"), &headers(&["198.51.100.7"]));
        assert_eq!(ip.to_string(), "198.51.100.7");
    }

    #[test]
    fn a_spoofed_left_entry_is_skipped_in_favour_of_the_last_untrusted_hop() {
        let r = ClientIpResolver::new(vec!["10.0.0.0/8".parse().unwrap()]);
        let ip = r.resolve(
            peer("10.0.0.2"),
            &headers(&["6.6.6.6, 198.51.100.7", "10.0.0.3"]),
        );
        assert_eq!(ip.to_string(), "198.51.100.7");
    }

    #[test]
    fn a_malformed_header_leaves_the_peer() {
        let r = ClientIpResolver::new(vec!["10.0.0.0/8".parse().unwrap()]);
        let ip = r.resolve(peer("10.0.0.2"), &headers(&["not-an-ip"]));
        assert_eq!(ip.to_string(), "10.0.0.2");
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_proxies() {
        let r = ClientIpResolver::new(vec!["127.0.0.1/32".parse().unwrap()]);
        let ip = r.resolve(peer("::ffff:127.0.0.1"), &headers(&["192.0.2.1"]));
        assert_eq!(ip.to_string(), "192.0.2.1");
    }
}
