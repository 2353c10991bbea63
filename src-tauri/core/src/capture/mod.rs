//! A delivery on its way into the store: the request as received plus what decoding
//! learned from it. Built by the ingest listener and by import alike, so both store the
//! same derived fields.

pub mod body;
pub mod card;
pub mod decode;
pub mod facts;
pub mod headers_file;
pub mod plain_text;
pub mod sender;
pub mod shape;
pub mod signature;

use bytes::Bytes;

use body::BodyKind;
use decode::{Decoded, Delivery};
use facts::Fact;
use shape::Paths;
use signature::Verdict;

/// The request as it arrived, untouched.
#[derive(Debug, Clone)]
pub struct RawDelivery {
    pub id: String,
    pub received_at: i64,
    pub endpoint_id: String,
    pub endpoint_name: String,
    pub method: String,
    /// The full path as sent (still percent-encoded), e.g. `/h/TOKEN/orders`.
    pub path: String,
    pub query: Option<String>,
    /// Every header, repeats kept, in arrival order.
    pub headers: Vec<(String, String)>,
    pub remote_addr: Option<String>,
    /// The sender's address: the peer, or behind a tunnel the address the tunnel reports.
    pub client_ip: Option<String>,
    /// Arrived through Hookscope's tunnel rather than on the direct listener.
    pub via_tunnel: bool,
    pub body: Bytes,
}

#[derive(Debug, Clone)]
pub struct Capture {
    pub raw: RawDelivery,
    pub headers_json: String,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub body_kind: BodyKind,
    pub decoded: Decoded,
    pub search_text: String,
    /// What the event says about its contact and funnel.
    pub fact: Option<Fact>,
    /// The payload's JSON paths, for schema drift; for typed JSON events only.
    pub paths: Option<Paths>,
    /// Under no secret until [`Capture::check_signature`] is given the endpoint's.
    pub signature: Verdict,
    /// The full URL to pass the delivery on to, when its endpoint forwards.
    pub forward_to: Option<String>,
    /// The install's API token is in its path, query or body (see [`Decoding::api_token`]):
    /// such a delivery is refused, never stored.
    pub carries_api_token: bool,
    /// It came from this install's own forward or replay: forwarding it again would loop.
    pub forward_looped: bool,
}

/// A fresh, time-ordered, globally unique event id.
pub fn new_event_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// How far decoding goes, and what must never reach the store.
#[derive(Debug, Clone, Default)]
pub struct Decoding {
    /// How far a compressed body is inflated for decoding (the stored bytes are never
    /// changed).
    pub inflate_limit: usize,
    /// This install's API token. A browser sends it (as the window's cookie) to any port of
    /// this host, the webhook port included: it is removed from headers, and a delivery
    /// that carries it anywhere else is refused.
    pub api_token: Option<String>,
}

impl Decoding {
    pub fn new(inflate_limit: usize) -> Decoding {
        Decoding {
            inflate_limit,
            api_token: None,
        }
    }
}

impl Capture {
    /// Classifies and decodes a delivery.
    pub fn build(mut raw: RawDelivery, decoding: &Decoding) -> Capture {
        let mut carries_api_token = false;
        if let Some(token) = decoding.api_token.as_deref().filter(|t| !t.is_empty()) {
            token_guard::strip_from_headers(&mut raw.headers, token);
            carries_api_token = token_guard::found_in(&raw, token);
        }
        let content_type = decode::header(&raw.headers, "content-type").map(str::to_string);
        let content_encoding = decode::header(&raw.headers, "content-encoding")
            .map(str::trim)
            .filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("identity"))
            .map(str::to_string);
        let wire = body::classify(&raw.body);
        let inflated = body::content_decoded(
            content_encoding.as_deref(),
            &raw.body,
            decoding.inflate_limit,
        );
        let (view_bytes, view): (&[u8], _) = match &inflated {
            Some(bytes) => (bytes, body::classify(bytes)),
            None => (&raw.body, wire.clone()),
        };
        if let (Some(token), Some(inflated)) = (decoding.api_token.as_deref(), &inflated) {
            carries_api_token |=
                !token.is_empty() && memchr::memmem::find(inflated, token.as_bytes()).is_some();
        }
        let json = view.json;
        let decoded = decode::decode(&Delivery {
            method: &raw.method,
            headers: &raw.headers,
            content_type: content_type.as_deref(),
            body: view_bytes,
            json: json.as_ref(),
        });
        let mut search_text = body::search_text(json.as_ref(), view_bytes);
        for extra in [Some(&decoded.summary), decoded.event_type.as_ref()]
            .into_iter()
            .flatten()
        {
            search_text.push('\n');
            search_text.push_str(extra);
        }
        let fact = facts::of(&decoded, json.as_ref());
        // A tree cut at the budget would look like fields went missing.
        let paths = match (&decoded.event_type, &json) {
            (Some(_), Some(json)) if view.complete => shape::paths_of(json),
            _ => None,
        };
        let headers_json =
            serde_json::to_string(&raw.headers).expect("a list of string pairs serialises");
        let signature = signature::verify(&raw.headers, &raw.body, None);
        Capture {
            raw,
            headers_json,
            content_type,
            content_encoding,
            body_kind: wire.kind,
            signature,
            decoded,
            search_text,
            fact,
            paths,
            forward_to: None,
            carries_api_token,
            forward_looped: false,
        }
    }

    /// The signature verdict under the endpoint's secret (on the bytes as received).
    pub fn check_signature(&mut self, secret: Option<&str>) {
        self.signature = signature::verify(&self.raw.headers, &self.raw.body, secret);
    }
}

/// Keeping the install's API token out of captures.
mod token_guard {
    use super::RawDelivery;

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
}
