//! Stored deliveries (`events`, and their full-text rows in `events_fts`): what an event
//! is as the API, the stream and exports show it ([`EventMeta`]), one event with its body,
//! counts. Lists and filters are in [`query`], writes in [`write`].

pub mod cadence;
pub mod compare;
pub mod query;
pub mod write;

use rusqlite::{Connection, OptionalExtension, Row};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::capture::Capture;
use crate::capture::body::BodyKind;
use crate::capture::facts::{Fact, Sale, parse_stored};
use crate::capture::sender::Sender;
use crate::capture::signature::Verdict;
use crate::error::{Error, Result};
use crate::store::forwards::ForwardView;
use crate::timefmt::format_micros;

/// Everything about an event except its body: list items and stream messages.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(rename = "EventSummary")]
pub struct EventMeta {
    pub id: String,
    pub received_at: String,
    pub endpoint: String,
    pub endpoint_name: String,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// `[[name, value], ...]` in arrival order.
    #[ts(as = "Vec<(String, String)>")]
    pub headers: Box<RawValue>,
    pub remote_addr: Option<String>,
    /// The sender's address (see [`crate::capture::sender`]).
    pub client_ip: Option<String>,
    pub via_tunnel: bool,
    /// `systeme.io`, `local`, `unknown` or `outside` (flagged): see [`Sender`].
    #[ts(as = "Option<Sender>")]
    pub sender: Option<&'static str>,
    /// Sent from one of systeme.io's addresses: true, false, or null when unknown.
    pub source_ok: Option<bool>,
    /// `valid`, `invalid`, `unsigned` or `no_secret`: see [`crate::capture::signature`].
    #[ts(as = "Verdict")]
    pub signature: &'static str,
    /// `X-Webhook-Message-Id`: deliveries sharing it are attempts at one message.
    pub message_id: Option<String>,
    /// 1 for the first delivery of a message.
    pub attempt: i64,
    /// Id of an identical unsigned delivery shortly before: a probable repeat.
    pub repeat_of: Option<String>,
    /// How the payload differed from its type's shape before it: `[{path, change, was,
    /// now}]`, or null.
    #[ts(as = "Option<Vec<crate::capture::shape::Change>>")]
    pub drift: Option<Box<RawValue>>,
    /// Passed on to the endpoint's forward target: how that went, or null.
    pub forward: Option<ForwardView>,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub size: i64,
    #[ts(as = "BodyKind")]
    pub body_kind: String,
    pub source: String,
    #[ts(as = "crate::capture::decode::Family")]
    pub family: String,
    pub event_type: Option<String>,
    pub label: String,
    pub summary: String,
    pub contact_email: Option<String>,
    pub contact_key: Option<String>,
    pub contact_id: Option<String>,
    pub contact_name: Option<String>,
    pub occurred_at: Option<String>,
    /// A sale's worth (see [`crate::capture::worth`]): what was paid, the list price and
    /// the discount, as the card and the funnel figures count it; null for other events.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub sale: Option<Sale>,
}

/// The sale among an event's facts.
fn sale_of<'a>(facts: impl IntoIterator<Item = &'a Fact>) -> Option<Sale> {
    facts.into_iter().find_map(|fact| match fact {
        Fact::Sale(sale) | Fact::SaleCanceled(sale) => Some(sale.clone()),
        _ => None,
    })
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
            // Known once stored: the forwards table has it.
            forward: None,
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
            sale: sale_of(&capture.facts),
        }
    }
}

/// What an event's summary is made of: the delivery as received (`d`), what was derived
/// from it (`e`), its endpoint's name now (`p`) and its forward (`fw`).
pub(crate) const META_COLUMNS: &str = "e.seq, d.id, d.received_at, d.endpoint_id,
    coalesce(p.name, d.endpoint_name) AS endpoint_name, d.method, d.path, d.query, d.headers,
    d.remote_addr, e.content_type, e.content_encoding, e.size, e.body_kind, e.source, e.family,
    e.event_type, e.label, e.summary, e.contact_email, e.contact_key, e.contact_id,
    e.contact_name, e.occurred_at, d.client_ip, d.via_tunnel, e.signature,
    e.message_id, e.attempt, e.repeat_of, e.drift, e.facts, fw.target AS fw_target,
    fw.state AS fw_state, fw.attempts AS fw_attempts, fw.status AS fw_status,
    fw.duration_ms AS fw_duration_ms, fw.error AS fw_error";

/// The names of [`META_COLUMNS`]' results, in their order. Rows are read by position: a
/// read by name compared the name of every column for every value (41% of an export's
/// CPU on the bench's million).
const META_NAMES: [&str; 38] = [
    "seq",
    "id",
    "received_at",
    "endpoint_id",
    "endpoint_name",
    "method",
    "path",
    "query",
    "headers",
    "remote_addr",
    "content_type",
    "content_encoding",
    "size",
    "body_kind",
    "source",
    "family",
    "event_type",
    "label",
    "summary",
    "contact_email",
    "contact_key",
    "contact_id",
    "contact_name",
    "occurred_at",
    "client_ip",
    "via_tunnel",
    "signature",
    "message_id",
    "attempt",
    "repeat_of",
    "drift",
    "facts",
    "fw_target",
    "fw_state",
    "fw_attempts",
    "fw_status",
    "fw_duration_ms",
    "fw_error",
];

/// The position of `name` among [`META_NAMES`]; a name that is not there fails the build.
pub(super) const fn at(name: &str) -> usize {
    let mut i = 0;
    while i < META_NAMES.len() {
        let candidate = META_NAMES[i].as_bytes();
        let wanted = name.as_bytes();
        if candidate.len() == wanted.len() {
            let mut j = 0;
            while j < wanted.len() && candidate[j] == wanted[j] {
                j += 1;
            }
            if j == wanted.len() {
                return i;
            }
        }
        i += 1;
    }
    panic!("not a column of META_COLUMNS")
}

/// Where the body is in a `SELECT {META_COLUMNS}, d.body` row.
const BODY_AT: usize = META_NAMES.len();

pub(crate) const JOIN_ENDPOINTS: &str = "JOIN deliveries d ON d.seq = e.seq
    LEFT JOIN endpoints p ON p.id = d.endpoint_id
    LEFT JOIN forwards fw ON fw.event_seq = e.seq";

fn sender_of(client_ip: Option<&str>, via_tunnel: bool) -> Option<Sender> {
    Some(Sender::of(client_ip?.parse().ok()?, via_tunnel))
}

pub(crate) fn meta_from_row(row: &Row) -> rusqlite::Result<EventMeta> {
    let client_ip: Option<String> = row.get(const { at("client_ip") })?;
    let via_tunnel: bool = row.get(const { at("via_tunnel") })?;
    let sender = sender_of(client_ip.as_deref(), via_tunnel);
    let headers: String = row.get(const { at("headers") })?;
    Ok(EventMeta {
        id: row.get(const { at("id") })?,
        received_at: format_micros(row.get(const { at("received_at") })?),
        endpoint: row.get(const { at("endpoint_id") })?,
        endpoint_name: row.get(const { at("endpoint_name") })?,
        method: row.get(const { at("method") })?,
        path: row.get(const { at("path") })?,
        query: row.get(const { at("query") })?,
        headers: RawValue::from_string(headers)
            .unwrap_or_else(|_| RawValue::from_string("[]".into()).expect("an empty list is JSON")),
        remote_addr: row.get(const { at("remote_addr") })?,
        sender: sender.map(Sender::as_str),
        source_ok: sender.and_then(Sender::is_systeme),
        signature: Verdict::parse(&row.get::<_, String>(const { at("signature") })?)
            .unwrap_or(Verdict::Unsigned)
            .as_str(),
        message_id: row.get(const { at("message_id") })?,
        attempt: row.get(const { at("attempt") })?,
        repeat_of: row.get(const { at("repeat_of") })?,
        drift: row
            .get::<_, Option<String>>(const { at("drift") })?
            .and_then(|d| RawValue::from_string(d).ok()),
        forward: match row.get::<_, Option<String>>(const { at("fw_target") })? {
            Some(target) => Some(ForwardView {
                target,
                state: row.get(const { at("fw_state") })?,
                attempts: row.get(const { at("fw_attempts") })?,
                status: row.get(const { at("fw_status") })?,
                duration_ms: row.get(const { at("fw_duration_ms") })?,
                error: row.get(const { at("fw_error") })?,
            }),
            None => None,
        },
        client_ip,
        via_tunnel,
        content_type: row.get(const { at("content_type") })?,
        content_encoding: row.get(const { at("content_encoding") })?,
        size: row.get(const { at("size") })?,
        body_kind: row.get(const { at("body_kind") })?,
        source: row.get(const { at("source") })?,
        family: row.get(const { at("family") })?,
        event_type: row.get(const { at("event_type") })?,
        label: row.get(const { at("label") })?,
        summary: row.get(const { at("summary") })?,
        contact_email: row.get(const { at("contact_email") })?,
        contact_key: row.get(const { at("contact_key") })?,
        contact_id: row.get(const { at("contact_id") })?,
        contact_name: row.get(const { at("contact_name") })?,
        occurred_at: row.get(const { at("occurred_at") })?,
        sale: row
            .get::<_, Option<String>>(const { at("facts") })?
            .and_then(|facts| sale_of(&parse_stored(&facts))),
    })
}

/// One stored event: what it is, and its exact body.
pub struct StoredEvent {
    pub meta: EventMeta,
    pub body_kind: BodyKind,
    pub body: Vec<u8>,
}

/// One event with its body. A delivery not indexed yet is decoded on the spot (what only
/// the indexer can tell, its attempt, repeat and drift, is not known yet).
pub fn get_event(conn: &Connection, id: &str) -> Result<StoredEvent> {
    let sql =
        format!("SELECT {META_COLUMNS}, d.body FROM events e {JOIN_ENDPOINTS} WHERE d.id = ?1");
    if let Some(event) = conn.query_row(&sql, [id], stored_from_row).optional()? {
        return Ok(event);
    }
    let (seq, raw) = crate::store::deliveries::get(conn, id)?
        .ok_or_else(|| Error::NotFound(format!("no event {id}")))?;
    decoded_on_the_spot(conn, seq, raw)
}

/// [`get_event`] by the delivery's seq.
pub fn get_event_by_seq(conn: &Connection, seq: i64) -> Result<StoredEvent> {
    let sql =
        format!("SELECT {META_COLUMNS}, d.body FROM events e {JOIN_ENDPOINTS} WHERE e.seq = ?1");
    if let Some(event) = conn.query_row(&sql, [seq], stored_from_row).optional()? {
        return Ok(event);
    }
    let raw = crate::store::deliveries::by_seq(conn, seq)?
        .ok_or_else(|| Error::NotFound(format!("no delivery {seq}")))?;
    decoded_on_the_spot(conn, seq, raw)
}

fn decoded_on_the_spot(
    conn: &Connection,
    seq: i64,
    raw: crate::capture::RawDelivery,
) -> Result<StoredEvent> {
    let secret = crate::store::endpoints::get(conn, &raw.endpoint_id)
        .ok()
        .and_then(|endpoint| endpoint.secret);
    let mut capture = Capture::build(raw, &crate::capture::Decoding::new(MAX_DECODED));
    capture.check_signature(secret.as_deref());
    let mut meta = EventMeta::from_capture(&capture);
    meta.forward = crate::store::forwards::view(conn, seq)?;
    Ok(StoredEvent {
        body_kind: capture.body_kind,
        body: capture.raw.body.to_vec(),
        meta,
    })
}

/// How far a body not indexed yet is inflated to show it (the default body limit).
const MAX_DECODED: usize = 10 * 1024 * 1024;

pub(crate) fn stored_from_row(row: &Row) -> rusqlite::Result<StoredEvent> {
    let meta = meta_from_row(row)?;
    Ok(StoredEvent {
        body_kind: BodyKind::parse(&meta.body_kind),
        body: row.get(BODY_AT)?,
        meta,
    })
}

#[derive(Debug, Serialize)]
pub struct Counts {
    pub events: i64,
    pub contacts: i64,
}

/// `delta` events were derived (or, negative, erased) in this transaction: the kept count
/// follows (`row_counts`; contacts are counted by triggers).
pub fn count_events(tx: &rusqlite::Transaction, delta: i64) -> Result<()> {
    if delta != 0 {
        tx.prepare_cached("UPDATE row_counts SET n = n + ?1 WHERE name = 'events'")?
            .execute([delta])?;
    }
    Ok(())
}

/// Every delivery stored, indexed (`events`) or among the `not_indexed` yet, and the
/// contacts: read from the counts triggers keep (`row_counts`), one row each, whatever the
/// store's size.
pub fn counts(conn: &Connection, not_indexed: i64) -> Result<Counts> {
    let mut stmt = conn.prepare_cached("SELECT name, n FROM row_counts")?;
    let mut counts = Counts {
        events: not_indexed,
        contacts: 0,
    };
    for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        match row? {
            (name, n) if name == "events" => counts.events += n,
            (name, n) if name == "contacts" => counts.contacts = n,
            _ => {}
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_read_at_the_positions_of_their_names() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::db::open_writer(
            &crate::store::db::database_path(dir.path()),
            crate::store::db::Synchronous::Normal,
        )
        .unwrap();
        let stmt = conn
            .prepare(&format!(
                "SELECT {META_COLUMNS}, d.body FROM events e {JOIN_ENDPOINTS}"
            ))
            .unwrap();
        let mut expected = META_NAMES.to_vec();
        expected.push("body");
        assert_eq!(stmt.column_names(), expected);
        assert_eq!(at("seq"), 0);
        assert_eq!(at("fw_error"), 37);
    }
}
