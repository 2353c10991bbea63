//! Loading an export back: JSON array or NDJSON, streamed. Events keep their ids, so an
//! import never duplicates what the store already holds, and bodies come back byte for
//! byte. Imported deliveries are stored as received; the indexer derives the rest (a
//! running Hookscope's, or [`crate::store::indexer::run_to_end`] when none runs).

use std::io::{BufRead, BufReader, Read};

use base64::Engine;
use bytes::Bytes;
use rusqlite::Connection;
use serde::Deserialize;
use serde::de::{DeserializeSeed, Error as _, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::capture::RawDelivery;
use crate::capture::token_guard::{self, TokenGuard};
use crate::error::{Error, Result};
use crate::store::deliveries::{self, Saved};
use crate::store::settings;
use crate::timefmt::parse_rfc3339_micros;

/// Events per transaction while importing.
const IMPORT_BATCH: usize = 1000;

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImportReport {
    pub imported: u64,
    pub already_present: u64,
    /// Events left out, each with why (the first [`REFUSALS_KEPT`]; `refused` counts all).
    pub refusals: Vec<String>,
    pub refused: u64,
}

/// Refusals named one by one in a report; beyond them only counted.
pub const REFUSALS_KEPT: usize = 100;

/// The fields of an exported event that import needs; the rest is derived again.
#[derive(Deserialize)]
struct ExportedEvent {
    /// The relay's cursor, on a sync line; an export has none.
    #[serde(default)]
    seq: Option<i64>,
    id: String,
    received_at: String,
    endpoint: String,
    #[serde(default)]
    endpoint_name: Option<String>,
    method: String,
    path: String,
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    headers: Vec<(String, String)>,
    #[serde(default)]
    remote_addr: Option<String>,
    #[serde(default)]
    client_ip: Option<String>,
    #[serde(default)]
    via_tunnel: bool,
    #[serde(default)]
    body: Option<Box<RawValue>>,
    #[serde(default)]
    body_text: Option<String>,
    #[serde(default)]
    body_base64: Option<String>,
}

impl ExportedEvent {
    /// The delivery, or why it cannot be imported. `max_body` is the store's body limit,
    /// the same a live delivery meets.
    fn into_delivery(self, max_body: usize) -> std::result::Result<RawDelivery, String> {
        if self.id.is_empty() || self.id.len() > 100 {
            return Err(format!("invalid id {:?}", self.id));
        }
        // Copied into commands (Copy as cURL) and sent by replays: an HTTP token only.
        if self.method.is_empty()
            || self.method.len() > 32
            || !self.method.bytes().all(is_token_byte)
        {
            return Err(format!("method {:?} is not an HTTP method", self.method));
        }
        let body_size = [
            self.body.as_ref().map(|raw| raw.get().len()),
            self.body_text.as_ref().map(String::len),
            // Base64 is four characters for three bytes.
            self.body_base64.as_ref().map(|b64| b64.len() / 4 * 3),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(0);
        if body_size > max_body {
            return Err(format!(
                "its body is {body_size} bytes, over this store's limit of {max_body} (--max-body)"
            ));
        }
        let received_at = parse_rfc3339_micros(&self.received_at)
            .ok_or_else(|| format!("received_at {:?} is not RFC 3339", self.received_at))?;
        let body: Vec<u8> = match (self.body, self.body_text, self.body_base64) {
            (Some(raw), None, None) => raw.get().as_bytes().to_vec(),
            (None, Some(text), None) => text.into_bytes(),
            (None, None, Some(b64)) => base64::engine::general_purpose::STANDARD
                .decode(b64.as_bytes())
                .map_err(|e| format!("body_base64 is not base64: {e}"))?,
            (None, None, None) => return Err("no body, body_text or body_base64".into()),
            _ => return Err("more than one of body, body_text, body_base64".into()),
        };
        Ok(RawDelivery {
            id: self.id,
            received_at,
            endpoint_name: self.endpoint_name.unwrap_or_else(|| self.endpoint.clone()),
            endpoint_id: self.endpoint,
            method: self.method,
            path: self.path,
            query: self.query,
            headers: self.headers,
            remote_addr: self.remote_addr,
            client_ip: self.client_ip,
            via_tunnel: self.via_tunnel,
            body: Bytes::from(body),
        })
    }
}

/// One line of a relay's sync feed ([`crate::exchange::delivery_json`]).
#[derive(Debug)]
pub enum SyncedLine {
    /// A delivery and its seq.
    Delivery(i64, Box<RawDelivery>),
    /// A whole delivery that this store cannot hold (its body is over this store's
    /// `--max-body`): passed over, named.
    TooLargeHere { seq: i64, why: String },
}

/// Reads one line of a relay's sync feed; `Err` when it is not a whole delivery with its
/// seq (the cursor must never move past it).
pub fn synced_delivery(line: &[u8], max_body: usize) -> std::result::Result<SyncedLine, String> {
    let event: ExportedEvent =
        serde_json::from_slice(line).map_err(|e| format!("not a delivery: {e}"))?;
    let seq = event.seq.ok_or("a delivery without its seq")?;
    if seq <= 0 {
        return Err(format!("a delivery with seq {seq}"));
    }
    let raw = event.into_delivery(usize::MAX)?;
    if raw.body.len() > max_body {
        return Ok(SyncedLine::TooLargeHere {
            seq,
            why: format!(
                "its body is {} bytes, over this store's limit of {max_body} (--max-body)",
                raw.body.len()
            ),
        });
    }
    Ok(SyncedLine::Delivery(seq, Box::new(raw)))
}

/// Whether a delivery from elsewhere (an import, a relay) may be stored: never with this
/// install's API token in it. Takes it out of the headers (a proxy's `Authorization`),
/// and says no when it is in the URL or the body.
pub fn keep_api_token_out(delivery: &mut RawDelivery, guard: &TokenGuard, max_body: usize) -> bool {
    let api_token = guard.token();
    if api_token.is_empty() {
        return true;
    }
    token_guard::strip_from_headers(&mut delivery.headers, api_token);
    !guard.found_in(delivery, max_body)
}

/// A character of an HTTP token (RFC 9110 §5.6.2), what a method is made of.
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// Saves a batch of deliveries as received, in one transaction: a Hookscope command's own
/// connection, or a running Hookscope's writer.
pub type SaveBatch<'s> = dyn FnMut(Vec<RawDelivery>) -> Result<Saved> + 's;

/// Imports from `input` (a JSON array or NDJSON) into the store on `conn` (no Hookscope
/// runs on it). See [`import_with`].
pub fn import(conn: &mut Connection, input: impl Read, max_body: usize) -> Result<ImportReport> {
    // Never stored, whatever an export holds (one from before it was kept out, say).
    let api_token = settings::get_setting(conn, settings::Setting::ApiToken)?.unwrap_or_default();
    let guard = TokenGuard::new(&api_token);
    import_with(input, max_body, &guard, &mut |batch| {
        deliveries::insert_batch(conn, &batch)
    })
}

/// Imports from `input` (a JSON array or NDJSON), handing [`IMPORT_BATCH`] events at a
/// time to `save`. An event that cannot be stored (a body over `max_body`, a method that
/// is not one, a bad time, this install's API token) is left out and named in the report;
/// the others are imported. Input that is not JSON stops the import: what came before
/// stays imported and the error says where.
pub fn import_with(
    input: impl Read,
    max_body: usize,
    api_token: &TokenGuard,
    save: &mut SaveBatch<'_>,
) -> Result<ImportReport> {
    let mut reader = BufReader::new(input);
    let mut sink = Sink {
        save,
        pending: Vec::with_capacity(IMPORT_BATCH),
        report: ImportReport::default(),
        seen: 0,
        api_token,
        max_body,
    };
    let starts_with_array = loop {
        let buf = reader.fill_buf()?;
        match buf.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(i) => {
                let is_array = buf[i] == b'[';
                break Some(is_array);
            }
            None if buf.is_empty() => break None,
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    };
    match starts_with_array {
        None => {}
        Some(true) => {
            let mut de = serde_json::Deserializer::from_reader(&mut reader);
            ArraySeed { sink: &mut sink }
                .deserialize(&mut de)
                .map_err(|e| Error::Invalid(format!("import stopped: {e}")))?;
            de.end()
                .map_err(|e| Error::Invalid(format!("import stopped: {e}")))?;
        }
        Some(false) => {
            let stream =
                serde_json::Deserializer::from_reader(&mut reader).into_iter::<ExportedEvent>();
            for event in stream {
                let event = event.map_err(|e| {
                    Error::Invalid(format!("import stopped at event #{}: {e}", sink.seen + 1))
                })?;
                sink.push(event).map_err(Error::Invalid)?;
            }
        }
    }
    sink.flush().map_err(Error::Invalid)?;
    Ok(sink.report)
}

struct Sink<'a, 's> {
    save: &'a mut SaveBatch<'s>,
    pending: Vec<RawDelivery>,
    report: ImportReport,
    seen: u64,
    api_token: &'a TokenGuard,
    max_body: usize,
}

impl Sink<'_, '_> {
    fn push(&mut self, event: ExportedEvent) -> std::result::Result<(), String> {
        self.seen += 1;
        let id = event.id.clone();
        let delivery = match event.into_delivery(self.max_body) {
            Ok(delivery) => delivery,
            Err(why) => {
                self.refuse(&id, &why);
                return Ok(());
            }
        };
        let mut delivery = delivery;
        if !keep_api_token_out(&mut delivery, self.api_token, self.max_body) {
            self.refuse(&id, "it carries this Hookscope's own API token");
            return Ok(());
        }
        self.pending.push(delivery);
        if self.pending.len() >= IMPORT_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn refuse(&mut self, id: &str, why: &str) {
        self.report.refused += 1;
        if self.report.refusals.len() < REFUSALS_KEPT {
            self.report
                .refusals
                .push(format!("event #{} ({id:?}) not imported: {why}", self.seen));
        }
    }

    fn flush(&mut self) -> std::result::Result<(), String> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.pending, Vec::with_capacity(IMPORT_BATCH));
        let saved = (self.save)(batch).map_err(|e| format!("import failed while saving: {e}"))?;
        self.report.imported += saved.imported;
        self.report.already_present += saved.already_present;
        Ok(())
    }
}

struct ArraySeed<'s, 'a, 'b> {
    sink: &'s mut Sink<'a, 'b>,
}

impl<'de> DeserializeSeed<'de> for ArraySeed<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> std::result::Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ArraySeed<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON array of exported events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        loop {
            let number = self.sink.seen + 1;
            let next = seq
                .next_element::<ExportedEvent>()
                .map_err(|e| A::Error::custom(format!("at event #{number}: {e}")))?;
            let Some(event) = next else { return Ok(()) };
            self.sink.push(event).map_err(A::Error::custom)?;
        }
    }
}
