//! The install's API token never enters the store. A browser sends it, as the window's
//! sign-in cookie (`hookscope_token_<UI port>`), to every port of the host, the webhook
//! port included: it is cut out of headers, and a delivery that carries it where it cannot
//! be cut out (URL, body) is refused.

use crate::capture::RawDelivery;
use crate::capture::contents;

/// The window's sign-in cookie: `hookscope_token_<UI port>`.
const COOKIE_PREFIX: &str = "hookscope_token_";
/// What stands where the token was in a header value.
const REMOVED: &str = "[Hookscope API token removed]";

/// Drops every Hookscope sign-in cookie (this install's or another's on the same host)
/// and any cookie holding the token; the token anywhere else in a header is replaced.
pub fn strip_from_headers(headers: &mut Vec<(String, String)>, token: &str) {
    headers.retain_mut(|(name, value)| {
        if name.eq_ignore_ascii_case("cookie") {
            let pairs: Vec<&str> = value.split(';').map(str::trim).collect();
            let kept: Vec<&str> = pairs
                .iter()
                .copied()
                .filter(|pair| {
                    let cookie = pair.split_once('=').map_or(*pair, |(name, _)| name);
                    !cookie.trim().starts_with(COOKIE_PREFIX) && !pair.contains(token)
                })
                .collect();
            if kept.is_empty() {
                return false;
            }
            if kept.len() < pairs.len() {
                *value = kept.join("; ");
            }
        }
        if value.contains(token) {
            *value = value.replace(token, REMOVED);
        }
        if name.contains(token) {
            *name = name.replace(token, REMOVED);
        }
        true
    });
}

/// Whether the token is anywhere in the delivery (see [`TokenGuard::found_in`]).
pub fn found_in(raw: &RawDelivery, token: &str, inflate_limit: usize) -> bool {
    TokenGuard::new(token).found_in(raw, inflate_limit)
}

/// The forms of one token a delivery is searched for, made once (ingest searches every
/// delivery for the same token).
#[derive(Debug, Clone)]
pub struct TokenGuard {
    token: String,
    lower: String,
    wrapped: Vec<String>,
}

impl TokenGuard {
    pub fn new(token: &str) -> TokenGuard {
        TokenGuard {
            token: token.to_string(),
            lower: token.to_ascii_lowercase(),
            wrapped: base64_forms(token),
        }
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// Whether the token is anywhere in the delivery (the headers once stripped, the
    /// path, the query, the body and its content-decoded form up to `inflate_limit`
    /// bytes), in any encoding [`contents`] undoes and in any case, or base64-encoded.
    pub fn found_in(&self, raw: &RawDelivery, inflate_limit: usize) -> bool {
        contents::any_view(raw, inflate_limit, |view| {
            ascii_case_insensitive_find(view.as_bytes(), self.lower.as_bytes())
                || self
                    .wrapped
                    .iter()
                    .any(|form| memchr::memmem::find(view.as_bytes(), form.as_bytes()).is_some())
        })
    }
}

fn ascii_case_insensitive_find(haystack: &[u8], lower_needle: &[u8]) -> bool {
    if haystack.iter().any(u8::is_ascii_uppercase) {
        memchr::memmem::find(&haystack.to_ascii_lowercase(), lower_needle).is_some()
    } else {
        memchr::memmem::find(haystack, lower_needle).is_some()
    }
}

/// The runs of base64 (standard and URL-safe) that the token's bytes encode to wherever
/// they start within a 3-byte group: each holds only characters that depend on the token
/// alone, so the token is found inside any longer base64 text.
fn base64_forms(token: &str) -> Vec<String> {
    use base64::Engine;
    let mut forms = Vec::new();
    for offset in 0..3 {
        let mut bytes = vec![0u8; offset];
        bytes.extend_from_slice(token.as_bytes());
        let first = (offset * 8).div_ceil(6);
        let end = bytes.len() * 8 / 6;
        for engine in [
            base64::engine::general_purpose::STANDARD_NO_PAD,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ] {
            let encoded = engine.encode(&bytes);
            if let Some(run) = encoded.get(first..end) {
                forms.push(run.to_string());
            }
        }
    }
    forms.sort();
    forms.dedup();
    forms
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    const TOKEN: &str = "3f9c2a7be1d04c55a8e6b0f7d2c91e4a3f9c2a7be1d04c55a8e6b0f7d2c91e4a";

    fn body(bytes: Vec<u8>, headers: Vec<(String, String)>) -> RawDelivery {
        RawDelivery {
            id: "d".into(),
            received_at: 0,
            endpoint_id: "ep".into(),
            endpoint_name: "ep".into(),
            method: "POST".into(),
            path: "/h/x".into(),
            query: None,
            headers,
            remote_addr: None,
            client_ip: None,
            via_tunnel: false,
            body: bytes.into(),
        }
    }

    #[test]
    fn the_token_is_found_in_every_encoding() {
        let escaped: String = TOKEN
            .chars()
            .map(|c| format!("\\u{:04x}", c as u32))
            .collect();
        let percent: String = TOKEN.bytes().map(|b| format!("%{b:02X}")).collect();
        for (what, bytes) in [
            ("as is", format!("{{\"t\":\"{TOKEN}\"}}")),
            ("upper-case", TOKEN.to_uppercase()),
            ("JSON-escaped", format!("{{\"t\":\"{escaped}\"}}")),
            ("percent-encoded", format!("t={percent}")),
            (
                "percent-encoded twice",
                format!("t={}", percent.replace('%', "%25")),
            ),
        ] {
            assert!(
                found_in(&body(bytes.into_bytes(), vec![]), TOKEN, 1 << 20),
                "{what}"
            );
        }
        for prefix in ["", "a", "ab"] {
            for engine in [
                base64::engine::general_purpose::STANDARD,
                base64::engine::general_purpose::URL_SAFE,
            ] {
                let wrapped = engine.encode(format!("{prefix}token={TOKEN};"));
                assert!(
                    found_in(&body(wrapped.into_bytes(), vec![]), TOKEN, 1 << 20),
                    "base64 after {prefix:?}"
                );
            }
        }
    }

    #[test]
    fn the_token_is_found_in_a_second_gzip_member() {
        use std::io::Write;
        let gzip = |data: &[u8]| {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(data).unwrap();
            enc.finish().unwrap()
        };
        let mut members = gzip(b"{\"harmless\":1}");
        members.extend(gzip(TOKEN.as_bytes()));
        let gzipped = vec![("content-encoding".to_string(), "gzip".to_string())];
        assert!(found_in(&body(members, gzipped.clone()), TOKEN, 1 << 20));
        assert!(!found_in(
            &body(gzip(b"nothing here"), gzipped),
            TOKEN,
            1 << 20
        ));
    }

    #[test]
    fn other_text_is_not_the_token() {
        let near = format!("{}0", &TOKEN[..TOKEN.len() - 1]);
        assert!(!found_in(&body(near.into_bytes(), vec![]), TOKEN, 1 << 20));
        assert!(!found_in(
            &body(b"plain body".to_vec(), vec![]),
            TOKEN,
            1 << 20
        ));
    }
}
