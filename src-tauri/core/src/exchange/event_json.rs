//! The event as the API, the stream and exports show it. The payload is embedded
//! verbatim: `body` holds the exact bytes that arrived when they are JSON, so a reader gets
//! the original document, not a re-serialisation of it.

use std::io::{self, Write};

use base64::Engine;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::capture::Capture;
use crate::capture::body::{self, BodyKind};
use crate::capture::sender::Sender;
use crate::timefmt::format_micros;

/// Everything about an event except its body: list items and stream messages.
#[derive(Debug, Clone, Serialize)]
pub struct EventMeta {
    pub id: String,
    pub received_at: String,
    pub endpoint: String,
    pub endpoint_name: String,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// `[[name, value], ...]` in arrival order.
    pub headers: Box<RawValue>,
    pub remote_addr: Option<String>,
    /// The sender's address (see [`crate::capture::sender`]).
    pub client_ip: Option<String>,
    pub via_tunnel: bool,
    /// `systeme.io`, `local`, `unknown` or `outside` (flagged): see [`Sender`].
    pub sender: Option<&'static str>,
    /// Sent from one of systeme.io's addresses: true, false, or null when unknown.
    pub source_ok: Option<bool>,
    /// `valid`, `invalid`, `unsigned` or `no_secret`: see [`crate::capture::signature`].
    pub signature: &'static str,
    /// `X-Webhook-Message-Id`: deliveries sharing it are attempts at one message.
    pub message_id: Option<String>,
    /// 1 for the first delivery of a message.
    pub attempt: i64,
    /// Id of an identical unsigned delivery shortly before: a probable repeat.
    pub repeat_of: Option<String>,
    /// How the payload differed from its type's shape before it: `[{path, change, was,
    /// now}]`, or null.
    pub drift: Option<Box<RawValue>>,
    /// Passed on to the endpoint's forward target: how that went, or null.
    pub forward: Option<crate::delivery::forward::ForwardView>,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub size: i64,
    pub body_kind: String,
    pub source: String,
    pub family: String,
    pub event_type: Option<String>,
    pub label: String,
    pub summary: String,
    pub contact_email: Option<String>,
    pub contact_key: Option<String>,
    pub contact_id: Option<String>,
    pub contact_name: Option<String>,
    pub occurred_at: Option<String>,
}

impl EventMeta {
    pub fn from_capture(capture: &Capture) -> EventMeta {
        let raw = &capture.raw;
        let sender = raw
            .client_ip
            .as_deref()
            .and_then(|ip| ip.parse().ok())
            .map(|ip| Sender::of(ip, raw.via_tunnel));
        EventMeta {
            id: raw.id.clone(),
            received_at: format_micros(raw.received_at),
            endpoint: raw.endpoint_id.clone(),
            endpoint_name: raw.endpoint_name.clone(),
            method: raw.method.clone(),
            path: raw.path.clone(),
            query: raw.query.clone(),
            headers: RawValue::from_string(capture.headers_json.clone())
                .expect("headers_json is serde_json output"),
            remote_addr: raw.remote_addr.clone(),
            client_ip: raw.client_ip.clone(),
            via_tunnel: raw.via_tunnel,
            sender: sender.map(Sender::as_str),
            source_ok: sender.and_then(Sender::is_systeme),
            signature: capture.signature.as_str(),
            // Known once stored: the writer fills them in.
            message_id: None,
            attempt: 1,
            repeat_of: None,
            drift: None,
            forward: capture.forward_to.as_ref().map(|target| {
                crate::delivery::forward::ForwardView {
                    target: target.clone(),
                    state: "pending".into(),
                    attempts: 0,
                    status: None,
                    duration_ms: None,
                    error: None,
                }
            }),
            content_type: capture.content_type.clone(),
            content_encoding: capture.content_encoding.clone(),
            size: raw.body.len() as i64,
            body_kind: capture.body_kind.as_str().to_string(),
            source: capture.decoded.source.as_str().to_string(),
            family: capture.decoded.family.as_str().to_string(),
            event_type: capture.decoded.event_type.clone(),
            label: capture.decoded.label.clone(),
            summary: capture.decoded.summary.clone(),
            contact_email: capture.decoded.contact_email.clone(),
            contact_key: capture.decoded.contact_key(),
            contact_id: capture.decoded.contact_id.clone(),
            contact_name: capture.decoded.contact_name.clone(),
            occurred_at: capture.decoded.occurred_at.clone(),
        }
    }
}

/// How the body goes into one line of NDJSON or into a JSON document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Document,
    /// One event per line: a JSON body holding raw newlines is carried as `body_text`.
    Line,
}

/// Writes one event with its payload:
/// - `body`: the JSON that arrived, byte for byte (compact JSON with no surrounding space);
/// - `body_text`: any other UTF-8;
/// - `body_base64`: anything else (binary, compressed);
///
/// plus, for a compressed body, `decoded_body` / `decoded_body_text` with its inflated form.
pub fn write_event(
    out: &mut impl Write,
    meta: &EventMeta,
    kind: BodyKind,
    body: &[u8],
    layout: Layout,
    inflate_limit: usize,
) -> io::Result<()> {
    let mut head = serde_json::to_vec(meta).map_err(io::Error::other)?;
    debug_assert_eq!(head.last(), Some(&b'}'));
    head.pop();
    out.write_all(&head)?;
    write_payload(out, "body", kind, body, layout)?;
    if meta.content_encoding.is_some()
        && let Some(inflated) =
            body::content_decoded(meta.content_encoding.as_deref(), body, inflate_limit)
    {
        write_payload(
            out,
            "decoded_body",
            body::kind_of(&inflated),
            &inflated,
            layout,
        )?;
    }
    out.write_all(b"}")
}

fn write_payload(
    out: &mut impl Write,
    field: &str,
    kind: BodyKind,
    body: &[u8],
    layout: Layout,
) -> io::Result<()> {
    let embeddable = kind == BodyKind::Json
        && !(layout == Layout::Line && body.iter().any(|&b| b == b'\n' || b == b'\r'));
    if embeddable {
        write!(out, ",\"{field}\":")?;
        return out.write_all(body);
    }
    match std::str::from_utf8(body) {
        Ok(text) => {
            write!(out, ",\"{field}_text\":")?;
            serde_json::to_writer(&mut *out, text).map_err(io::Error::other)
        }
        Err(_) => {
            write!(out, ",\"{field}_base64\":\"")?;
            out.write_all(
                base64::engine::general_purpose::STANDARD
                    .encode(body)
                    .as_bytes(),
            )?;
            out.write_all(b"\"")
        }
    }
}
