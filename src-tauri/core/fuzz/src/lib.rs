//! What the fuzz targets check, shared by both. An input is one delivery: its first byte
//! picks the request's content type and encoding, the rest is the body.

use base64::Engine;
use bytes::Bytes;
use hookscope_core::capture::{Capture, Decoding, RawDelivery};

/// Content types and encodings a delivery may claim.
const CLAIMS: &[(Option<&str>, Option<&str>)] = &[
    (Some("application/json"), None),
    (Some("application/x-www-form-urlencoded"), None),
    (Some("text/plain; charset=utf-8"), None),
    (None, None),
    (Some("application/json"), Some("gzip")),
    (Some("application/json"), Some("deflate")),
    (Some("application/octet-stream"), Some("br")),
    (Some("multipart/form-data; boundary=x"), None),
];

/// The delivery an input stands for.
pub fn delivery(data: &[u8], received_at: i64, endpoint: (&str, &str)) -> RawDelivery {
    let (claim, body) = match data.split_first() {
        Some((first, rest)) => (CLAIMS[*first as usize % CLAIMS.len()], rest),
        None => (CLAIMS[0], data),
    };
    let mut headers = vec![("host".to_string(), "127.0.0.1".to_string())];
    if let Some(content_type) = claim.0 {
        headers.push(("content-type".into(), content_type.into()));
    }
    if let Some(encoding) = claim.1 {
        headers.push(("content-encoding".into(), encoding.into()));
    }
    RawDelivery {
        id: hookscope_core::capture::new_event_id(),
        received_at,
        endpoint_id: endpoint.0.to_string(),
        endpoint_name: endpoint.1.to_string(),
        method: "POST".into(),
        path: "/h/fuzz".into(),
        query: None,
        headers,
        remote_addr: Some("127.0.0.1:9".into()),
        client_ip: Some("127.0.0.1".into()),
        via_tunnel: false,
        body: Bytes::copy_from_slice(body),
    }
}

/// Builds the capture (decoding must not panic on anything).
pub fn capture(raw: RawDelivery) -> Capture {
    let mut capture = Capture::build(raw, &Decoding::new(1 << 20));
    capture.check_signature(Some("fuzz-secret"));
    capture
}

/// The payload bytes an event's JSON carries, whichever field holds them.
pub fn payload_of(
    event: &serde_json::Map<String, serde_json::Value>,
    raw_body: Option<&str>,
) -> Vec<u8> {
    if let Some(raw) = raw_body {
        return raw.as_bytes().to_vec();
    }
    if let Some(text) = event.get("body_text") {
        return text
            .as_str()
            .expect("body_text is a string")
            .as_bytes()
            .to_vec();
    }
    if let Some(b64) = event.get("body_base64") {
        return base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().expect("body_base64 is a string"))
            .expect("body_base64 decodes");
    }
    Vec::new()
}

/// Parses JSON without serde_json's depth limit of 128: a body of depth 127 is embedded
/// as JSON, so its event is one level deeper than that, and valid all the same.
pub fn parse_deep<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> serde_json::Result<T> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    deserializer.disable_recursion_limit();
    let value = T::deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}
