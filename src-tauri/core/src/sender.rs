//! Who sent a delivery: the client address (behind a tunnel, the one the tunnel reports)
//! and whether it is one of systeme.io's published sending addresses. Deliveries from
//! elsewhere are flagged, never dropped.

use std::net::{IpAddr, Ipv4Addr};

/// The addresses systeme.io sends webhooks from (its help centre, "webhooks IP").
pub const SYSTEME_SENDERS: [IpAddr; 3] = [
    IpAddr::V4(Ipv4Addr::new(185, 236, 142, 1)),
    IpAddr::V4(Ipv4Addr::new(185, 236, 142, 2)),
    IpAddr::V4(Ipv4Addr::new(185, 236, 142, 3)),
];

/// The sender's address. Forwarding headers are believed only on the tunnel's own
/// listener: on the direct listener anyone could write them.
pub fn client_ip(peer: IpAddr, headers: &[(String, String)], behind_tunnel: bool) -> IpAddr {
    if !behind_tunnel {
        return peer;
    }
    fn named<'h>(headers: &'h [(String, String)], name: &'h str) -> impl Iterator<Item = &'h str> {
        headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    let cloudflare = named(headers, "cf-connecting-ip").find_map(|v| v.trim().parse().ok());
    // The last hop is the one our tunnel's edge added; earlier ones are the sender's say.
    let forwarded = || {
        named(headers, "x-forwarded-for")
            .flat_map(|v| v.split(','))
            .last()
            .and_then(|v| v.trim().parse().ok())
    };
    cloudflare.or_else(forwarded).unwrap_or(peer)
}

/// What the client address says about the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    /// One of systeme.io's published addresses.
    SystemeIo,
    /// This machine or its network, not through a tunnel (`hookscope send`, a local test).
    Local,
    /// Through a tunnel that does not report the sender (bore forwards plain TCP).
    Unknown,
    /// Anyone else: flagged in the UI.
    Outside,
}

impl Sender {
    pub fn of(ip: IpAddr, via_tunnel: bool) -> Sender {
        let ip = ip.to_canonical();
        if SYSTEME_SENDERS.contains(&ip) {
            Sender::SystemeIo
        } else if ip.is_loopback() {
            if via_tunnel {
                Sender::Unknown
            } else {
                Sender::Local
            }
        } else if !via_tunnel && is_private(ip) {
            Sender::Local
        } else {
            Sender::Outside
        }
    }

    /// Whether this is systeme.io: unknown for local deliveries and silent tunnels.
    pub fn is_systeme(self) -> Option<bool> {
        match self {
            Sender::SystemeIo => Some(true),
            Sender::Outside => Some(false),
            Sender::Local | Sender::Unknown => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Sender::SystemeIo => "systeme.io",
            Sender::Local => "local",
            Sender::Unknown => "unknown",
            Sender::Outside => "outside",
        }
    }
}

fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_unique_local() || v6.is_unicast_link_local(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn forwarding_headers_count_only_behind_the_tunnel() {
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        let cf = headers(&[
            ("CF-Connecting-IP", " 185.236.142.2 "),
            ("x-forwarded-for", "9.9.9.9"),
        ]);
        assert_eq!(
            client_ip(loopback, &cf, true),
            "185.236.142.2".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_ip(loopback, &cf, false),
            loopback,
            "direct: headers are not believed"
        );
        let chain = headers(&[
            ("X-Forwarded-For", "1.1.1.1, 2.2.2.2"),
            ("x-forwarded-for", "3.3.3.3"),
        ]);
        assert_eq!(
            client_ip(loopback, &chain, true),
            "3.3.3.3".parse::<IpAddr>().unwrap()
        );
        let junk = headers(&[("x-forwarded-for", "not an address")]);
        assert_eq!(client_ip(loopback, &junk, true), loopback);
    }

    #[test]
    fn senders_are_classified() {
        let cases = [
            ("185.236.142.1", false, Sender::SystemeIo),
            ("185.236.142.3", true, Sender::SystemeIo),
            ("::ffff:185.236.142.2", true, Sender::SystemeIo),
            ("185.236.142.4", true, Sender::Outside),
            ("127.0.0.1", false, Sender::Local),
            ("127.0.0.1", true, Sender::Unknown),
            ("192.168.1.20", false, Sender::Local),
            ("192.168.1.20", true, Sender::Outside),
            ("8.8.8.8", false, Sender::Outside),
        ];
        for (ip, via_tunnel, expected) in cases {
            assert_eq!(
                Sender::of(ip.parse().unwrap(), via_tunnel),
                expected,
                "{ip} via tunnel: {via_tunnel}"
            );
        }
    }
}
