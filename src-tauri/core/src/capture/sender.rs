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

/// Which forwarding header the hop in front of a listener writes itself, and so can be
/// believed. Anything else in a delivery's headers is the sender's own say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reported {
    /// None: the peer is the sender (the public listener), or the tunnel carries plain TCP
    /// and reports nobody (bore).
    Nothing,
    /// Cloudflare's edge sets `Cf-Connecting-IP`, replacing any a client sent (cloudflared).
    CloudflareHeader,
    /// The hop appends the address it saw to `X-Forwarded-For`: the last entry is its own
    /// (ngrok, a reverse proxy of yours).
    LastForwardedFor,
}

/// The sender's address: what the hop in front reports, else the peer.
pub fn client_ip(peer: IpAddr, headers: &[(String, String)], reported: Reported) -> IpAddr {
    fn named<'h>(headers: &'h [(String, String)], name: &'h str) -> impl Iterator<Item = &'h str> {
        headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    let found = match reported {
        Reported::Nothing => None,
        Reported::CloudflareHeader => {
            named(headers, "cf-connecting-ip").find_map(|v| v.trim().parse().ok())
        }
        Reported::LastForwardedFor => named(headers, "x-forwarded-for")
            .flat_map(|v| v.split(','))
            .last()
            .and_then(|v| v.trim().parse().ok()),
    };
    found.unwrap_or(peer)
}

/// What the client address says about the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ts_rs::TS)]
#[ts(rename_all = "lowercase")]
pub enum Sender {
    /// One of systeme.io's published addresses.
    #[ts(rename = "systeme.io")]
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
    fn only_the_header_the_hop_writes_is_believed() {
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        let both = headers(&[
            ("CF-Connecting-IP", " 185.236.142.2 "),
            ("x-forwarded-for", "9.9.9.9"),
        ]);
        assert_eq!(
            client_ip(loopback, &both, Reported::CloudflareHeader),
            ip("185.236.142.2")
        );
        assert_eq!(
            client_ip(loopback, &both, Reported::LastForwardedFor),
            ip("9.9.9.9"),
            "a Cf-Connecting-IP a client wrote through ngrok or a proxy is not believed"
        );
        assert_eq!(
            client_ip(loopback, &both, Reported::Nothing),
            loopback,
            "direct or bore: headers are the sender's own say"
        );
        let forwarded_only = headers(&[("x-forwarded-for", "185.236.142.1")]);
        assert_eq!(
            client_ip(loopback, &forwarded_only, Reported::CloudflareHeader),
            loopback,
            "behind Cloudflare, X-Forwarded-For a client wrote is not believed"
        );
        let chain = headers(&[
            ("X-Forwarded-For", "1.1.1.1, 2.2.2.2"),
            ("x-forwarded-for", "3.3.3.3"),
        ]);
        assert_eq!(
            client_ip(loopback, &chain, Reported::LastForwardedFor),
            ip("3.3.3.3")
        );
        let junk = headers(&[("x-forwarded-for", "not an address")]);
        assert_eq!(
            client_ip(loopback, &junk, Reported::LastForwardedFor),
            loopback
        );
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
