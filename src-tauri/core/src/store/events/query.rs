//! Lists of stored events: filters shared by the event list and exports, cursors, and
//! full-text search. Every function takes a read connection and never writes.

use rusqlite::Connection;
use rusqlite::types::Value as SqlValue;
use serde::{Deserialize, Serialize};

use super::{EventMeta, JOIN_ENDPOINTS, META_COLUMNS, StoredEvent, meta_from_row, stored_from_row};
use crate::capture::decode::normalise_email;
use crate::capture::signature::Verdict;
use crate::error::{Error, Result};
use crate::timefmt::parse_rfc3339_micros;

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 500;

/// Filters shared by the event list and the export (query string of both).
#[derive(Debug, Clone, Default, Deserialize, ts_rs::TS)]
#[ts(optional_fields)]
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
    /// Exports only: exactly the deliveries forgetting this address would erase, about
    /// them and mentioning them (the other filters do not apply).
    pub forget: Option<String>,
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
pub(crate) struct Conditions {
    pub(crate) sql: Vec<String>,
    pub(crate) params: Vec<SqlValue>,
}

impl Conditions {
    pub(crate) fn push(&mut self, sql: &str, values: impl IntoIterator<Item = SqlValue>) {
        self.sql.push(sql.to_string());
        self.params.extend(values);
    }

    pub(crate) fn where_clause(&self) -> String {
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
    if filter.forget.is_some() {
        return Err(Error::Invalid(
            "forget= chooses what an export holds before a forget; it does not filter lists".into(),
        ));
    }
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

#[derive(Debug, Serialize, ts_rs::TS)]
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
            received_at: row.get(const { super::at("received_at") })?,
            seq: row.get(const { super::at("seq") })?,
        });
        events.push(meta_from_row(row)?);
    }
    Ok(EventPage {
        events,
        next: if more { last.map(Cursor::render) } else { None },
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
        "SELECT {META_COLUMNS}, d.body {from} {} {order}",
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

/// Per event type, how many deliveries drifted from its shape: one pass over the drifted
/// ones (a partial index), not one count over every delivery of each type.
pub fn drifted_by_type(conn: &Connection) -> Result<std::collections::HashMap<String, i64>> {
    Ok(conn
        .prepare_cached(
            "SELECT event_type, count(*) FROM events
             WHERE drift IS NOT NULL AND event_type IS NOT NULL GROUP BY event_type",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?)
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
