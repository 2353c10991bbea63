//! A delivery on its way into the store: the request as received plus what decoding
//! learned from it. Built by the ingest listener and by import alike, so both store the
//! same derived fields.

pub mod body;
pub mod card;
pub mod contents;
pub mod decode;
pub mod diff;
pub mod facts;
pub mod fields;
pub mod headers_file;
pub mod mentions;
#[cfg(test)]
mod mentions_props;
pub mod plain_text;
pub mod sender;
pub mod shape;
pub mod signature;
pub mod token_guard;
pub mod worth;

use bytes::Bytes;
use sha2::{Digest, Sha256};

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
    /// [`search_hash`] of `search_text`, stored with the event.
    pub search_hash: i64,
    /// What the event says about its contact and funnel (the contact's tag list first,
    /// when the payload has it).
    pub facts: Vec<Fact>,
    /// The payload's JSON paths, for schema drift; for typed JSON events only.
    pub paths: Option<Paths>,
    /// Their variant's [`shape::fingerprint`], when there are paths.
    pub variant: Option<u64>,
    /// SHA-256 of an unsigned, non-empty body, by which repeats are found. Made with the
    /// rest of the decoding (on the reading thread in a catch-up), not while deriving.
    pub body_hash: Option<Vec<u8>>,
    /// Under no secret until [`Capture::check_signature`] is given the endpoint's.
    pub signature: Verdict,
}

/// Stored with each event: whether a text made again from its delivery is the one it was
/// indexed with (the first 8 bytes of its SHA-256).
pub fn search_hash(text: &str) -> i64 {
    let digest = Sha256::digest(text.as_bytes());
    i64::from_le_bytes(digest[..8].try_into().expect("eight bytes"))
}

/// A fresh, time-ordered, globally unique event id.
pub fn new_event_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// How far decoding goes.
#[derive(Debug, Clone, Default)]
pub struct Decoding {
    /// How far a compressed body is inflated for decoding (the stored bytes are never
    /// changed).
    pub inflate_limit: usize,
}

impl Decoding {
    pub fn new(inflate_limit: usize) -> Decoding {
        Decoding { inflate_limit }
    }
}

impl Capture {
    /// Classifies and decodes a delivery.
    pub fn build(raw: RawDelivery, decoding: &Decoding) -> Capture {
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
        let search_hash = search_hash(&search_text);
        let facts = facts::of(&decoded, json.as_ref());
        // A tree cut at the budget would look like fields went missing.
        let paths = match (&decoded.event_type, &json) {
            (Some(_), Some(json)) if view.complete => shape::paths_of(json),
            _ => None,
        };
        let headers_json =
            serde_json::to_string(&raw.headers).expect("a list of string pairs serialises");
        let signature = signature::verify(&raw.headers, &raw.body, None);
        let variant = paths.as_ref().map(shape::fingerprint);
        // Unsigned is the lack of a signature header: no secret changes it.
        let body_hash = (signature == Verdict::Unsigned && !raw.body.is_empty())
            .then(|| Sha256::digest(&raw.body).to_vec());
        Capture {
            raw,
            headers_json,
            content_type,
            content_encoding,
            body_kind: wire.kind,
            signature,
            decoded,
            search_text,
            search_hash,
            facts,
            paths,
            variant,
            body_hash,
        }
    }

    /// The signature verdict under the endpoint's secret (on the bytes as received).
    pub fn check_signature(&mut self, secret: Option<&str>) {
        self.signature = signature::verify(&self.raw.headers, &self.raw.body, secret);
    }
}
