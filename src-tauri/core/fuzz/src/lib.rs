//! What the fuzz targets check, shared by both: [`decode_case`] and [`ExportImport::case`].
//! An input is one delivery: its first byte picks the request's content type and
//! encoding, the rest is the body. `cargo fuzz` runs them on generated inputs (`make
//! soak`); `tests/replay.rs` replays the fixtures and the kept regression inputs through
//! the same checks in every `make test`.

use base64::Engine;
use bytes::Bytes;
use hookscope_core::capture::{Capture, Decoding, RawDelivery};
use hookscope_core::exchange::event_json::{Layout, write_event};
use hookscope_core::exchange::export::{Format, export};
use hookscope_core::exchange::import::import;
use hookscope_core::store::db::{self, Connection, Synchronous};
use hookscope_core::store::endpoints;
use hookscope_core::store::events::query::EventFilter;
use hookscope_core::store::events::{EventMeta, get_event};
use hookscope_core::store::{deliveries, indexer};
use hookscope_core::timefmt::format_micros;
use serde_json::value::RawValue;

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

/// Decoding a delivery never panics, and its event JSON (document and line layouts) is
/// valid JSON carrying the body byte for byte.
pub fn decode_case(data: &[u8]) {
    let raw = delivery(data, 1_764_000_000_000_000, ("ep", "Default"));
    let sent = raw.body.clone();
    let capture = capture(raw);
    let meta = EventMeta::from_capture(&capture);
    for layout in [Layout::Document, Layout::Line] {
        let mut out = Vec::new();
        write_event(&mut out, &meta, capture.body_kind, &sent, layout, 1 << 20).unwrap();
        if layout == Layout::Line {
            assert!(!out.contains(&b'\n'), "one event per line");
        }
        let event: serde_json::Map<String, serde_json::Value> =
            parse_deep(&out).expect("the event is valid JSON");
        let raw_body = parse_deep::<std::collections::HashMap<String, &RawValue>>(&out)
            .unwrap()
            .get("body")
            .map(|b| b.get().to_string());
        assert_eq!(
            payload_of(&event, raw_body.as_deref()),
            sent.to_vec(),
            "the body byte for byte"
        );
        assert_eq!(event["size"], sent.len(), "its size");
    }
}

/// Two stores: deliveries go into one, are exported, and imported into the other.
pub struct ExportImport {
    _dir: tempfile::TempDir,
    source: Connection,
    target: Connection,
    endpoint: (String, String),
    /// Each input is received a moment after the previous one, so a `since` filter
    /// picks it alone.
    clock: i64,
}

impl Default for ExportImport {
    fn default() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let source = db::open_writer(&dir.path().join("source.db"), Synchronous::Normal).unwrap();
        let target = db::open_writer(&dir.path().join("target.db"), Synchronous::Normal).unwrap();
        let endpoint = endpoints::ensure_default(&source).unwrap();
        ExportImport {
            _dir: dir,
            source,
            target,
            endpoint: (endpoint.id, endpoint.name),
            clock: 1_764_000_000_000_000,
        }
    }
}

impl ExportImport {
    /// A stored delivery, exported (JSON array and NDJSON) and imported into another
    /// store, comes back byte for byte; importing it again adds nothing.
    pub fn case(&mut self, data: &[u8]) {
        self.clock += 1_000;
        let received_at = self.clock;
        let raw = delivery(data, received_at, (&self.endpoint.0, &self.endpoint.1));
        let (id, sent) = (raw.id.clone(), raw.body.clone());
        // Decoding must not panic on anything (what the indexer does with every delivery).
        capture(raw.clone());
        let tx = self.source.transaction().unwrap();
        deliveries::insert(&tx, &raw).unwrap();
        tx.commit().unwrap();
        indexer::run_to_end(&mut self.source, 1 << 20, |_, _| {}).unwrap();
        let filter = EventFilter {
            since: Some(format_micros(received_at)),
            ..Default::default()
        };
        let format = if data.len().is_multiple_of(2) {
            Format::Json
        } else {
            Format::Ndjson
        };
        let mut exported = Vec::new();
        let count = export(&self.source, &filter, format, &mut exported, 1 << 20).unwrap();
        assert_eq!(count, 1, "the new event alone is exported");
        if format == Format::Json {
            parse_deep::<serde_json::Value>(&exported).expect("the export is valid JSON");
        }
        let report = import(&mut self.target, &exported[..], 1 << 20).expect("the export imports");
        indexer::run_to_end(&mut self.target, 1 << 20, |_, _| {}).unwrap();
        assert_eq!((report.imported, report.already_present), (1, 0));
        let stored = get_event(&self.target, &id).expect("the imported event is found");
        assert_eq!(
            stored.body,
            sent.to_vec(),
            "byte for byte after the round trip"
        );
        let again = import(&mut self.target, &exported[..], 1 << 20).unwrap();
        assert_eq!(
            (again.imported, again.already_present),
            (0, 1),
            "no duplicate"
        );
    }
}
