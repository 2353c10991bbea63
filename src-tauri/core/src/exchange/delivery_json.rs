//! A stored delivery as the relay's sync listener sends it: one line of the export format
//! (`id`, `received_at`, `endpoint`, `method`, `path`, `headers`, ..., the body byte for
//! byte as `body`, `body_text` or `body_base64`) with its `seq`, the cursor a follower
//! keeps. Only what arrived: nothing derived, and never the endpoint's token (the path's
//! `/h/TOKEN` goes out as `/h/ENDPOINT_ID`).

use std::io::{self, Write};

use serde::Serialize;

use crate::capture::RawDelivery;
use crate::capture::body;
use crate::exchange::event_json::{Layout, write_payload};
use crate::timefmt::format_micros;

/// The fields before the body, in the export's names.
#[derive(Serialize)]
struct Head<'a> {
    seq: i64,
    id: &'a str,
    received_at: String,
    endpoint: &'a str,
    endpoint_name: &'a str,
    method: &'a str,
    path: String,
    query: Option<&'a str>,
    headers: &'a [(String, String)],
    remote_addr: Option<&'a str>,
    client_ip: Option<&'a str>,
    via_tunnel: bool,
}

/// Writes one delivery as one line (no newline).
pub fn write_delivery(out: &mut impl Write, seq: i64, raw: &RawDelivery) -> io::Result<()> {
    write_head(out, seq, raw)?;
    write_payload(
        out,
        "body",
        body::kind_of(&raw.body),
        &raw.body,
        Layout::Line,
    )?;
    out.write_all(b"}")
}

/// The start of a line whose body follows a slice at a time, as base64 (a body too large
/// to hold at once): every field but the body, then `"body_base64":"`. Slices of the
/// body encoded one after another (each a multiple of three bytes but the last), then
/// [`STREAMED_END`], complete it.
pub fn write_streamed_start(out: &mut impl Write, seq: i64, raw: &RawDelivery) -> io::Result<()> {
    write_head(out, seq, raw)?;
    out.write_all(b",\"body_base64\":\"")
}

/// What ends a line begun with [`write_streamed_start`].
pub const STREAMED_END: &[u8] = b"\"}";

/// Every field before the body, the object left open.
fn write_head(out: &mut impl Write, seq: i64, raw: &RawDelivery) -> io::Result<()> {
    let head = Head {
        seq,
        id: &raw.id,
        received_at: format_micros(raw.received_at),
        endpoint: &raw.endpoint_id,
        endpoint_name: &raw.endpoint_name,
        method: &raw.method,
        path: path_without_token(&raw.path, &raw.endpoint_id),
        query: raw.query.as_deref(),
        headers: &raw.headers,
        remote_addr: raw.remote_addr.as_deref(),
        client_ip: raw.client_ip.as_deref(),
        via_tunnel: raw.via_tunnel,
    };
    let mut line = serde_json::to_vec(&head).map_err(io::Error::other)?;
    line.pop();
    out.write_all(&line)
}

/// `/h/TOKEN/rest` → `/h/ENDPOINT_ID/rest`: the token lets anyone post to the endpoint, so
/// it stays where it was created. Any other path is sent as it is.
pub fn path_without_token(path: &str, endpoint_id: &str) -> String {
    match path.strip_prefix("/h/") {
        Some(rest) => {
            let after_token = rest.find('/').map_or("", |at| &rest[at..]);
            format!("/h/{endpoint_id}{after_token}")
        }
        None => path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_never_leaves_in_a_path() {
        assert_eq!(path_without_token("/h/secret", "ep_1"), "/h/ep_1");
        assert_eq!(
            path_without_token("/h/secret/orders/7", "ep_1"),
            "/h/ep_1/orders/7",
            "the sub-path is kept for forwarding"
        );
        assert_eq!(path_without_token("/other", "ep_1"), "/other");
    }
}
