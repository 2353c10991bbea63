//! The install's API token never enters the store. A browser sends it, as the window's
//! sign-in cookie (`hookscope_token_<UI port>`), to every port of the host, the webhook
//! port included: it is cut out of headers, and a delivery that carries it where it cannot
//! be cut out (URL, body) is refused.

use crate::capture::RawDelivery;
use crate::capture::body;

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

/// Whether the token is in what is stored byte for byte: path, query, body.
pub fn found_in(raw: &RawDelivery, token: &str) -> bool {
    raw.path.contains(token)
        || raw.query.as_deref().is_some_and(|q| q.contains(token))
        || memchr::memmem::find(&raw.body, token.as_bytes()).is_some()
}

/// Whether the token is in the body once its `Content-Encoding` is undone (up to `limit`
/// bytes inflated).
pub fn found_inflated(encoding: Option<&str>, body: &[u8], limit: usize, token: &str) -> bool {
    body::content_decoded(encoding, body, limit)
        .is_some_and(|inflated| memchr::memmem::find(&inflated, token.as_bytes()).is_some())
}
