//! Reading the store: event lists with filters and cursors, one event with its body,
//! contacts, counts. Every function takes a read connection and never writes.

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::capture::body::BodyKind;
use crate::capture::decode::normalise_email;
use crate::capture::sender::Sender;
use crate::capture::signature::Verdict;
use crate::error::{Error, Result};
use crate::exchange::event_json::EventMeta;
use crate::timefmt::{format_micros, parse_rfc3339_micros};

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 500;

/// Filters shared by the event list and the export (query string of both).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EventFilter {
    pub email: Option<String>,
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    pub family: Option<String>,
    /// `valid`, `invalid`, `unsigned` or `no_secret`.
    pub signature: Option<String>,
    /// `true`: only deliveries whose shape differed from their type's before them.
    pub drift: Option<String>,
    pub q: Option<String>,
    pub endpoint: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<usize>,
    pub before: Option<String>,
}

/// Position in a newest-first list: `received_at:seq` of the last row shown.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    received_at: i64,
    seq: i64,
}

impl Cursor {
    fn parse(text: &str) -> Result<Cursor> {
        let bad = || {
            Error::Invalid(format!(
                "invalid cursor {text:?}: pass back `next` as given"
            ))
        };
        let (at, seq) = text.split_once(':').ok_or_else(bad)?;
        Ok(Cursor {
            received_at: at.parse().map_err(|_| bad())?,
            seq: seq.parse().map_err(|_| bad())?,
        })
    }

    fn render(self) -> String {
        format!("{}:{}", self.received_at, self.seq)
    }
}

/// A SQL `WHERE` clause and its parameters.
struct Conditions {
    sql: Vec<String>,
    params: Vec<SqlValue>,
}

impl Conditions {
    fn push(&mut self, sql: &str, values: impl IntoIterator<Item = SqlValue>) {
        self.sql.push(sql.to_string());
        self.params.extend(values);
    }

    fn where_clause(&self) -> String {
        if self.sql.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.sql.join(" AND "))
        }
    }
}

/// The `WHERE` conditions of a filter and whether it is a full-text search (then the
/// full-text index drives the query, in store order). `None` when it can match nothing
/// (a search with no searchable word).
/// Refuses a filter that cannot be run (bad verdict, time or cursor) before anything is
/// written.
pub fn check_filter(filter: &EventFilter) -> Result<()> {
    conditions(filter).map(|_| ())
}

fn conditions(filter: &EventFilter) -> Result<Option<(Conditions, bool)>> {
    let mut c = Conditions {
        sql: Vec::new(),
        params: Vec::new(),
    };
    let present = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let searching = match present(&filter.q) {
        Some(q) => match fts_query(&q) {
            Some(query) => {
                c.push("events_fts MATCH ?", [SqlValue::Text(query)]);
                true
            }
            None => return Ok(None),
        },
        None => false,
    };
    if let Some(email) = present(&filter.email) {
        c.push(
            "e.contact_key = ?",
            [SqlValue::Text(normalise_email(&email))],
        );
    }
    if let Some(kind) = present(&filter.event_type) {
        c.push("e.event_type = ?", [SqlValue::Text(kind)]);
    }
    if let Some(signature) = present(&filter.signature) {
        let verdict = Verdict::parse(&signature).ok_or_else(|| {
            Error::Invalid(format!(
                "signature={signature:?}: use valid, invalid, unsigned or no_secret"
            ))
        })?;
        c.push("e.signature = ?", [SqlValue::Text(verdict.as_str().into())]);
    }
    if let Some(drift) = present(&filter.drift) {
        match drift.as_str() {
            "true" | "1" => c.push("e.drift IS NOT NULL", []),
            "false" | "0" => c.push("e.drift IS NULL", []),
            other => {
                return Err(Error::Invalid(format!(
                    "drift={other:?}: use true or false"
                )));
            }
        }
    }
    if let Some(family) = present(&filter.family) {
        c.push("e.family = ?", [SqlValue::Text(family)]);
    }
    if let Some(endpoint) = present(&filter.endpoint) {
        c.push("e.endpoint_id = ?", [SqlValue::Text(endpoint)]);
    }
    if let Some(since) = present(&filter.since) {
        c.push(
            "e.received_at >= ?",
            [SqlValue::Integer(instant(&since, "since")?)],
        );
    }
    if let Some(until) = present(&filter.until) {
        c.push(
            "e.received_at < ?",
            [SqlValue::Integer(instant(&until, "until")?)],
        );
    }
    Ok(Some((c, searching)))
}

/// `FROM` and the order of a query: newest first unless `ascending`. A full-text search
/// walks the index by rowid (store order: arrival order for live captures), which lets it
/// stop after one page however common the words are.
fn source_and_order(searching: bool, ascending: bool) -> (String, &'static str) {
    let from = if searching {
        format!("FROM events_fts f JOIN events e ON e.seq = f.rowid {JOIN_ENDPOINTS}")
    } else {
        format!("FROM events e {JOIN_ENDPOINTS}")
    };
    let order = match (searching, ascending) {
        (true, false) => "ORDER BY f.rowid DESC",
        (true, true) => "ORDER BY f.rowid",
        (false, false) => "ORDER BY e.received_at DESC, e.seq DESC",
        (false, true) => "ORDER BY e.received_at, e.seq",
    };
    (from, order)
}

pub(crate) fn instant(text: &str, name: &str) -> Result<i64> {
    parse_rfc3339_micros(text).ok_or_else(|| {
        Error::Invalid(format!(
            "{name}={text:?} is not an RFC 3339 time (e.g. 2026-11-28T09:00:00Z)"
        ))
    })
}

/// Turns what a person types into an FTS5 query: every word must appear, the last one
/// also as a prefix once it has three characters, so results narrow as they type (a
/// shorter prefix would expand to a large share of the vocabulary). Words are quoted:
/// nothing typed can be read as FTS5 syntax.
pub fn fts_query(text: &str) -> Option<String> {
    let words: Vec<&str> = text
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .collect();
    let last = words.last()?;
    let quoted: Vec<String> = words
        .iter()
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect();
    let prefix = if last.chars().filter(|c| c.is_alphanumeric()).count() >= 3 {
        "*"
    } else {
        ""
    };
    Some(format!("{}{prefix}", quoted.join(" ")))
}

const META_COLUMNS: &str = "e.seq, e.id, e.received_at, e.endpoint_id,
    coalesce(p.name, e.endpoint_name) AS endpoint_name, e.method, e.path, e.query, e.headers,
    e.remote_addr, e.content_type, e.content_encoding, e.size, e.body_kind, e.source, e.family,
    e.event_type, e.label, e.summary, e.contact_email, e.contact_key, e.contact_id,
    e.contact_name, e.occurred_at, e.client_ip, e.via_tunnel, e.signature,
    e.message_id, e.attempt, e.repeat_of, e.drift, fw.target AS fw_target,
    fw.state AS fw_state, fw.attempts AS fw_attempts, fw.status AS fw_status,
    fw.duration_ms AS fw_duration_ms, fw.error AS fw_error";

const JOIN_ENDPOINTS: &str = "LEFT JOIN endpoints p ON p.id = e.endpoint_id
    LEFT JOIN forwards fw ON fw.event_seq = e.seq";

fn sender_of(client_ip: Option<&str>, via_tunnel: bool) -> Option<Sender> {
    Some(Sender::of(client_ip?.parse().ok()?, via_tunnel))
}

fn meta_from_row(row: &Row) -> rusqlite::Result<EventMeta> {
    let client_ip: Option<String> = row.get("client_ip")?;
    let via_tunnel: bool = row.get("via_tunnel")?;
    let sender = sender_of(client_ip.as_deref(), via_tunnel);
    let headers: String = row.get("headers")?;
    Ok(EventMeta {
        id: row.get("id")?,
        received_at: format_micros(row.get("received_at")?),
        endpoint: row.get("endpoint_id")?,
        endpoint_name: row.get("endpoint_name")?,
        method: row.get("method")?,
        path: row.get("path")?,
        query: row.get("query")?,
        headers: RawValue::from_string(headers)
            .unwrap_or_else(|_| RawValue::from_string("[]".into()).expect("an empty list is JSON")),
        remote_addr: row.get("remote_addr")?,
        sender: sender.map(Sender::as_str),
        source_ok: sender.and_then(Sender::is_systeme),
        signature: Verdict::parse(&row.get::<_, String>("signature")?)
            .unwrap_or(Verdict::Unsigned)
            .as_str(),
        message_id: row.get("message_id")?,
        attempt: row.get("attempt")?,
        repeat_of: row.get("repeat_of")?,
        drift: row
            .get::<_, Option<String>>("drift")?
            .and_then(|d| RawValue::from_string(d).ok()),
        forward: match row.get::<_, Option<String>>("fw_target")? {
            Some(target) => Some(crate::delivery::forward::ForwardView {
                target,
                state: row.get("fw_state")?,
                attempts: row.get("fw_attempts")?,
                status: row.get("fw_status")?,
                duration_ms: row.get("fw_duration_ms")?,
                error: row.get("fw_error")?,
            }),
            None => None,
        },
        client_ip,
        via_tunnel,
        content_type: row.get("content_type")?,
        content_encoding: row.get("content_encoding")?,
        size: row.get("size")?,
        body_kind: row.get("body_kind")?,
        source: row.get("source")?,
        family: row.get("family")?,
        event_type: row.get("event_type")?,
        label: row.get("label")?,
        summary: row.get("summary")?,
        contact_email: row.get("contact_email")?,
        contact_key: row.get("contact_key")?,
        contact_id: row.get("contact_id")?,
        contact_name: row.get("contact_name")?,
        occurred_at: row.get("occurred_at")?,
    })
}

#[derive(Debug, Serialize)]
pub struct EventPage {
    pub events: Vec<EventMeta>,
    /// Pass as `before` for the next (older) page; `null` at the end.
    pub next: Option<String>,
}

/// Newest first, `limit` at a time.
pub fn list_events(conn: &Connection, filter: &EventFilter) -> Result<EventPage> {
    let limit = filter.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let Some((mut c, searching)) = conditions(filter)? else {
        return Ok(EventPage {
            events: Vec::new(),
            next: None,
        });
    };
    if let Some(before) = filter.before.as_deref().filter(|b| !b.is_empty()) {
        let cursor = Cursor::parse(before)?;
        if searching {
            c.push("f.rowid < ?", [SqlValue::Integer(cursor.seq)]);
        } else {
            c.push(
                "(e.received_at, e.seq) < (?, ?)",
                [
                    SqlValue::Integer(cursor.received_at),
                    SqlValue::Integer(cursor.seq),
                ],
            );
        }
    }
    let (from, order) = source_and_order(searching, false);
    let sql = format!(
        "SELECT {META_COLUMNS} {from} {} {order} LIMIT {}",
        c.where_clause(),
        limit + 1
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(c.params.iter()))?;
    let mut events = Vec::with_capacity(limit);
    let mut last = None;
    let mut more = false;
    while let Some(row) = rows.next()? {
        if events.len() == limit {
            more = true;
            break;
        }
        last = Some(Cursor {
            received_at: row.get("received_at")?,
            seq: row.get("seq")?,
        });
        events.push(meta_from_row(row)?);
    }
    Ok(EventPage {
        events,
        next: if more { last.map(Cursor::render) } else { None },
    })
}

/// One stored event: what it is, and its exact body.
pub struct StoredEvent {
    pub meta: EventMeta,
    pub body_kind: BodyKind,
    pub body: Vec<u8>,
}

pub fn get_event(conn: &Connection, id: &str) -> Result<StoredEvent> {
    let sql =
        format!("SELECT {META_COLUMNS}, e.body FROM events e {JOIN_ENDPOINTS} WHERE e.id = ?1");
    conn.query_row(&sql, [id], stored_from_row)
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("no event {id}")))
}

fn stored_from_row(row: &Row) -> rusqlite::Result<StoredEvent> {
    let meta = meta_from_row(row)?;
    Ok(StoredEvent {
        body_kind: BodyKind::parse(&meta.body_kind),
        body: row.get("body")?,
        meta,
    })
}

/// Every event matching `filter`, oldest first, with bodies; for exports. Streams: one
/// row in memory at a time.
pub fn for_each_event(
    conn: &Connection,
    filter: &EventFilter,
    mut each: impl FnMut(StoredEvent) -> Result<()>,
) -> Result<u64> {
    let Some((c, searching)) = conditions(filter)? else {
        return Ok(0);
    };
    let (from, order) = source_and_order(searching, true);
    let sql = format!(
        "SELECT {META_COLUMNS}, e.body {from} {} {order}",
        c.where_clause()
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(c.params.iter()))?;
    let mut count = 0;
    while let Some(row) = rows.next()? {
        each(stored_from_row(row)?)?;
        count += 1;
    }
    Ok(count)
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Contact {
    /// Lower-cased: the grouping key.
    pub email: String,
    pub name: Option<String>,
    pub contact_id: Option<String>,
    pub events: i64,
    pub first_seen: String,
    pub last_seen: String,
    pub last_event_id: String,
    pub last_event_type: Option<String>,
    pub last_label: String,
    pub last_summary: String,
}

#[derive(Debug, Serialize)]
pub struct ContactPage {
    pub contacts: Vec<Contact>,
    pub next: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ContactFilter {
    pub q: Option<String>,
    pub limit: Option<usize>,
    pub before: Option<String>,
}

/// Contacts, most recent activity first; `q` matches email or name anywhere, any case.
pub fn list_contacts(conn: &Connection, filter: &ContactFilter) -> Result<ContactPage> {
    let limit = filter.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let mut c = Conditions {
        sql: Vec::new(),
        params: Vec::new(),
    };
    if let Some(q) = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        if q.chars().count() >= 3 {
            // Trigram index: any substring of three characters or more, without a scan.
            c.push(
                "id IN (SELECT rowid FROM contacts_search WHERE contacts_search MATCH ?)",
                [SqlValue::Text(format!("\"{}\"", q.replace('"', "\"\"")))],
            );
        } else {
            // One or two characters match most contacts: walking them newest first finds
            // a page quickly.
            let pattern = format!("%{}%", escape_like(&q.to_lowercase()));
            c.push(
                "(key LIKE ? ESCAPE '\\' OR lower(name) LIKE ? ESCAPE '\\')",
                [SqlValue::Text(pattern.clone()), SqlValue::Text(pattern)],
            );
        }
    }
    if let Some(before) = filter.before.as_deref().filter(|b| !b.is_empty()) {
        let (at, key) = before
            .split_once(':')
            .and_then(|(at, key)| Some((at.parse::<i64>().ok()?, key)))
            .ok_or_else(|| Error::Invalid(format!("invalid cursor {before:?}")))?;
        c.push(
            "(last_seen, key) < (?, ?)",
            [SqlValue::Integer(at), SqlValue::Text(key.to_string())],
        );
    }
    let sql = format!(
        "SELECT {CONTACT_COLUMNS} FROM contacts {} ORDER BY last_seen DESC, key DESC LIMIT {}",
        c.where_clause(),
        limit + 1
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(c.params.iter()))?;
    let mut contacts = Vec::with_capacity(limit);
    let mut next = None;
    let mut last_cursor = None;
    while let Some(row) = rows.next()? {
        if contacts.len() == limit {
            next = last_cursor.take();
            break;
        }
        let last_seen: i64 = row.get("last_seen")?;
        let key: String = row.get("key")?;
        last_cursor = Some(format!("{last_seen}:{key}"));
        contacts.push(contact_from_row(row)?);
    }
    Ok(ContactPage { contacts, next })
}

const CONTACT_COLUMNS: &str = "key, name, contact_id, events, first_seen, last_seen,
    last_event_id, last_event_type, last_label, last_summary";

fn contact_from_row(row: &Row) -> rusqlite::Result<Contact> {
    Ok(Contact {
        email: row.get("key")?,
        name: row.get("name")?,
        contact_id: row.get("contact_id")?,
        events: row.get("events")?,
        first_seen: format_micros(row.get("first_seen")?),
        last_seen: format_micros(row.get("last_seen")?),
        last_event_id: row.get("last_event_id")?,
        last_event_type: row.get("last_event_type")?,
        last_label: row.get("last_label")?,
        last_summary: row.get("last_summary")?,
    })
}

/// One contact by email, any case.
pub fn get_contact(conn: &Connection, email: &str) -> Result<Contact> {
    let key = normalise_email(email);
    conn.prepare_cached(&format!(
        "SELECT {CONTACT_COLUMNS} FROM contacts WHERE key = ?1"
    ))?
    .query_row([&key], contact_from_row)
    .optional()?
    .ok_or_else(|| Error::NotFound(format!("no contact {key}")))
}

fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

#[derive(Debug, Serialize)]
pub struct Counts {
    pub events: i64,
    pub contacts: i64,
}

pub fn counts(conn: &Connection) -> Result<Counts> {
    Ok(Counts {
        events: conn.query_row("SELECT count(*) FROM events", [], |r| r.get(0))?,
        contacts: conn.query_row("SELECT count(*) FROM contacts", [], |r| r.get(0))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_words_are_quoted_and_the_last_is_a_prefix() {
        assert_eq!(
            fts_query("marie dup").as_deref(),
            Some("\"marie\" \"dup\"*")
        );
        assert_eq!(
            fts_query("a\"b OR cc NEAR").as_deref(),
            Some("\"a\"\"b\" \"OR\" \"cc\" \"NEAR\"*"),
            "operators and quotes typed by a user are plain words"
        );
        assert_eq!(fts_query("  @@ -- "), None, "nothing searchable");
        assert_eq!(
            fts_query("tag 4").as_deref(),
            Some("\"tag\" \"4\""),
            "a one-character prefix would match most of the index"
        );
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = Cursor::parse("1700000000000000:42").unwrap();
        assert_eq!(c.render(), "1700000000000000:42");
        assert!(Cursor::parse("nope").is_err());
    }
}
