//! A delivery on its way into the store: the request as received plus what decoding
//! learned from it. Built by the ingest listener and by import alike, so both store the
//! same derived fields.

use bytes::Bytes;

use crate::body::{self, BodyKind};
use crate::decode::{self, Decoded, Delivery};
use crate::facts::{self, Fact};
use crate::shapes::{self, Paths};
use crate::signature::{self, Verdict};

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
}

/// A fresh, time-ordered, globally unique event id.
pub fn new_event_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

impl Capture {
    /// Classifies and decodes a delivery. `inflate_limit` caps how far a compressed body
    /// is inflated for decoding (the stored bytes are never changed).
    pub fn build(raw: RawDelivery, inflate_limit: usize) -> Capture {
        let content_type = decode::header(&raw.headers, "content-type").map(str::to_string);
        let content_encoding = decode::header(&raw.headers, "content-encoding")
            .map(str::trim)
            .filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("identity"))
            .map(str::to_string);
        let (body_kind, wire_json) = body::classify(&raw.body);
        let inflated = body::content_decoded(content_encoding.as_deref(), &raw.body, inflate_limit);
        let (view_bytes, json): (&[u8], _) = match &inflated {
            Some(bytes) => (bytes, body::classify(bytes).1),
            None => (&raw.body, wire_json),
        };
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
        let paths = match (&decoded.event_type, &json) {
            (Some(_), Some(json)) => shapes::paths_of(json),
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
            body_kind,
            signature,
            decoded,
            search_text,
            fact,
            paths,
            forward_to: None,
        }
    }

    /// The signature verdict under the endpoint's secret (on the bytes as received).
    pub fn check_signature(&mut self, secret: Option<&str>) {
        self.signature = signature::verify(&self.raw.headers, &self.raw.body, secret);
    }
}
