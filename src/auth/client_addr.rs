//! Who the client is: the peer address, or — only when the peer is a configured trusted proxy —
//! the address that proxy reports in `Forwarded` (RFC 7239) or `X-Forwarded-For`.
//!
//! The system we replace believed `X-Forwarded-For: 127.0.0.1` from anyone. Here a forwarding
//! header from an untrusted peer is ignored entirely. From a trusted peer the list is read from
//! the right (the entries nearest to us), skipping further trusted proxies; the first other
//! address is the client. Entries a client wrote itself sit further left and are never reached.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;

/// The client address to count and log for this request.
pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let peer_ip = canonical(peer.ip());
    if !trusted.iter().any(|t| canonical(*t) == peer_ip) {
        return peer_ip;
    }
    let hops = forwarded_for(headers);
    for hop in hops.iter().rev() {
        if !trusted.iter().any(|t| canonical(*t) == *hop) {
            return *hop;
        }
    }
    // Every hop is a trusted proxy (or no header): the left-most known address, else the peer.
    hops.first().copied().unwrap_or(peer_ip)
}

/// Whether the trusted proxy in front says the client used https (for `Secure` cookies).
pub fn forwarded_https(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> bool {
    let peer_ip = canonical(peer.ip());
    if !trusted.iter().any(|t| canonical(*t) == peer_ip) {
        return false;
    }
    let xfp = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    let fwd = headers
        .get_all("forwarded")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("proto=https"));
    xfp || fwd
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The `for=` addresses of `Forwarded`, or else `X-Forwarded-For`, left to right. Entries that
/// are not addresses (`unknown`, obfuscated ids) are dropped.
fn forwarded_for(headers: &HeaderMap) -> Vec<IpAddr> {
    // Bounded: a header may carry any number of hops; a handful is all a real chain has.
    const MAX_HOPS: usize = 32;
    let mut out = Vec::new();
    let forwarded: Vec<&str> = headers
        .get_all("forwarded")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !forwarded.is_empty() {
        for element in forwarded.iter().flat_map(|v| v.split(',')) {
            for pair in element.split(';') {
                let Some((k, v)) = pair.split_once('=') else {
                    continue;
                };
                if k.trim().eq_ignore_ascii_case("for") {
                    if let Some(ip) = parse_node(v.trim().trim_matches('"')) {
                        out.push(ip);
                    }
                }
            }
            if out.len() >= MAX_HOPS {
                break;
            }
        }
        return out;
    }
    for v in headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
    {
        for part in v.split(',') {
            if let Some(ip) = parse_node(part.trim()) {
                out.push(ip);
            }
            if out.len() >= MAX_HOPS {
                return out;
            }
        }
    }
    out
}

/// `1.2.3.4`, `1.2.3.4:80`, `[::1]`, `[::1]:80` or `::1`.
fn parse_node(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(canonical(sa.ip()));
    }
    s.strip_prefix('[')
        .and_then(|r| r.split(']').next())
        .and_then(|ip| ip.parse().ok())
        .map(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn untrusted_peer_headers_are_ignored() {
        let peer: SocketAddr = "203.0.113.9:5000".parse().unwrap();
        let h = headers(&[("x-forwarded-for", "127.0.0.1")]);
        assert_eq!(client_ip(peer, &h, &[]), peer.ip());
    }

    #[test]
    fn trusted_proxy_reports_the_client_and_client_written_entries_are_skipped() {
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let trusted = ["127.0.0.1".parse().unwrap()];
        let h = headers(&[("x-forwarded-for", "10.9.9.9, 198.51.100.7")]);
        assert_eq!(
            client_ip(peer, &h, &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        let h = headers(&[("forwarded", "for=\"[2001:db8::1]:4711\";proto=https")]);
        assert_eq!(
            client_ip(peer, &h, &trusted),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
        assert!(forwarded_https(peer, &h, &trusted));
        assert!(!forwarded_https(
            "10.0.0.1:1".parse().unwrap(),
            &h,
            &trusted
        ));
    }
}
