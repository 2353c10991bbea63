//! The event as the API and exports write it: its [`EventMeta`] and its payload. The
//! payload is embedded verbatim: `body` holds the exact bytes that arrived when they are JSON, so a reader gets
//! the original document, not a re-serialisation of it.

use std::io::{self, Write};

use base64::Engine;

use crate::capture::body::{self, BodyKind};
use crate::store::events::EventMeta;

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

/// The length of `text` as a JSON string's contents, escapes counted as serde_json
/// writes them.
fn escaped_len(text: &[u8]) -> usize {
    text.iter()
        .map(|&b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..0x20 => 6,
            _ => 1,
        })
        .sum()
}

pub(crate) fn write_payload(
    out: &mut impl Write,
    field: &str,
    kind: BodyKind,
    body: &[u8],
    layout: Layout,
) -> io::Result<()> {
    // memchr's vectorised scan: a byte at a time, this scan was 8% of an NDJSON export.
    let embeddable = kind == BodyKind::Json
        && !(layout == Layout::Line && memchr::memchr2(b'\n', b'\r', body).is_some());
    if embeddable {
        write!(out, ",\"{field}\":")?;
        return out.write_all(body);
    }
    match std::str::from_utf8(body) {
        // As text unless escaping would make it longer than base64 (control bytes cost six
        // each): a line never grows past 4/3 of its body.
        Ok(text) if escaped_len(body) <= body.len().div_ceil(3) * 4 => {
            write!(out, ",\"{field}_text\":")?;
            serde_json::to_writer(&mut *out, text).map_err(io::Error::other)
        }
        _ => {
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
