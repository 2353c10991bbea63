//! A relay to follow, checked before it is used or remembered: the token only ever goes
//! over https:// or to this machine.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A relay to follow: its sync URL and token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowTarget {
    pub url: String,
    pub token: String,
}

impl FollowTarget {
    /// Checks the URL: `https://`, or `http://` to this machine only (an SSH tunnel), so
    /// the token never crosses a network in clear.
    pub fn new(url: &str, token: &str) -> Result<FollowTarget> {
        let url = url.trim().trim_end_matches('/');
        let parsed = url::Url::parse(url)
            .map_err(|e| Error::Invalid(format!("the relay URL {url:?} is not a URL: {e}")))?;
        let loopback = match parsed.host() {
            Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        match parsed.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => {
                return Err(Error::Invalid(format!(
                    "the relay URL {url} is plain http:// to another machine: the sync token would cross the network in clear. Use https:// (your reverse proxy) or an SSH tunnel to 127.0.0.1"
                )));
            }
            other => {
                return Err(Error::Invalid(format!(
                    "the relay URL must start with https:// (or http://127.0.0.1), not {other}://"
                )));
            }
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(Error::Invalid(
                "the relay URL holds a user name or password: give the URL without them, and the relay's sync token as the token".into(),
            ));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(Error::Invalid(format!(
                "the relay URL {url} has a query or fragment: give the sync URL the relay printed"
            )));
        }
        let token = token.trim();
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::Invalid(
                "the sync token is empty or has spaces: copy the `Sync token:` line the relay printed".into(),
            ));
        }
        Ok(FollowTarget {
            url: url.to_string(),
            token: token.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_the_url_are_refused() {
        let refused = FollowTarget::new("https://me:secret@relay.example.com", "t").unwrap_err();
        assert!(refused.to_string().contains("sync token"), "{refused}");
        assert!(FollowTarget::new("https://me@relay.example.com", "t").is_err());
    }

    #[test]
    fn the_token_only_goes_over_https_or_to_this_machine() {
        assert!(FollowTarget::new("https://relay.example.com/", "t").is_ok());
        assert!(FollowTarget::new("http://127.0.0.1:4749", "t").is_ok());
        assert!(FollowTarget::new("http://localhost:4749", "t").is_ok());
        assert!(FollowTarget::new("http://[::1]:4749", "t").is_ok());
        let refused = FollowTarget::new("http://relay.example.com", "t").unwrap_err();
        assert!(
            refused.to_string().contains("in clear"),
            "plain http to another machine is refused with why: {refused}"
        );
        assert!(FollowTarget::new("http://10.0.0.5:4749", "t").is_err());
        assert!(FollowTarget::new("ftp://relay", "t").is_err());
        assert!(FollowTarget::new("https://relay", " ").is_err());
        assert_eq!(
            FollowTarget::new("https://relay.example.com/sync/", "t")
                .unwrap()
                .url,
            "https://relay.example.com/sync",
            "a trailing slash is dropped so routes join cleanly"
        );
    }
}
