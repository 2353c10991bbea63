//! Contacts (`contacts`, and the trigram rows of `contacts_search`): one row per email,
//! with running totals kept as deliveries are stored, and the contact list.

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, Transaction};
use serde::{Deserialize, Serialize};

use crate::capture::decode::{Decoded, normalise_email};
use crate::error::{Error, Result};
use crate::store::events::query::{Conditions, DEFAULT_LIMIT, MAX_LIMIT};
use crate::store::full_text::HeldText;
use crate::timefmt::format_micros;

#[derive(Debug, Clone, Serialize, PartialEq, ts_rs::TS)]
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

#[derive(Debug, Serialize, ts_rs::TS)]
pub struct ContactPage {
    pub contacts: Vec<Contact>,
    pub next: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, ts_rs::TS)]
#[ts(optional_fields)]
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

/// What an event says that its contact's row keeps.
pub struct ContactEvent<'a> {
    pub name: Option<&'a str>,
    pub contact_id: Option<&'a str>,
    pub event_type: Option<&'a str>,
    pub label: &'a str,
    pub summary: &'a str,
}

impl<'a> From<&'a Decoded> for ContactEvent<'a> {
    fn from(decoded: &'a Decoded) -> Self {
        ContactEvent {
            name: decoded.contact_name.as_deref(),
            contact_id: decoded.contact_id.as_deref(),
            event_type: decoded.event_type.as_deref(),
            label: &decoded.label,
            summary: &decoded.summary,
        }
    }
}

/// The contact's row and search row made again from its events, as the indexer made them
/// (in the order it derived them); both go when no event is left. The search row's
/// changes are held in `text`, for the caller to write.
pub fn rebuild(tx: &Transaction, key: &str, text: &mut HeldText) -> Result<()> {
    if let Some((id, indexed)) = tx
        .prepare_cached("SELECT id, search_text FROM contacts WHERE key = ?1")?
        .query_row([key], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?))
        })
        .optional()?
    {
        if let Some(indexed) = indexed {
            text.unindex_contact(id, indexed);
        }
        tx.prepare_cached("DELETE FROM contacts WHERE id = ?1")?
            .execute([id])?;
    }
    // What the indexer counted: not deliveries that failed verification; retries and
    // repeats only as sightings, not as events.
    let mut stmt = tx.prepare_cached(
        "SELECT contact_name, contact_id, event_type, label, summary, received_at, id,
                attempt = 1 AND repeat_of IS NULL
         FROM events WHERE contact_key = ?1 AND signature <> 'invalid' ORDER BY seq",
    )?;
    /// An event's columns the contact's row is made from.
    struct Stored {
        name: Option<String>,
        contact_id: Option<String>,
        event_type: Option<String>,
        label: String,
        summary: String,
        received_at: i64,
        id: String,
        first: bool,
    }
    let rows: Vec<Stored> = stmt
        .query_map([key], |r| {
            Ok(Stored {
                name: r.get(0)?,
                contact_id: r.get(1)?,
                event_type: r.get(2)?,
                label: r.get(3)?,
                summary: r.get(4)?,
                received_at: r.get(5)?,
                id: r.get(6)?,
                first: r.get(7)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    for row in rows {
        let event = ContactEvent {
            name: row.name.as_deref(),
            contact_id: row.contact_id.as_deref(),
            event_type: row.event_type.as_deref(),
            label: &row.label,
            summary: &row.summary,
        };
        record_delivery(tx, key, &event, row.received_at, &row.id, row.first, text)?;
    }
    Ok(())
}

/// A delivery about contact `key` was stored (`counts` when it is one more event, not
/// another attempt at one): its running totals, and its search row when it appears or is
/// renamed (held in `text`, for the caller to write). Imports can bring older events: the
/// newest event decides the "last" columns.
pub fn record_delivery(
    tx: &Transaction,
    key: &str,
    event: &ContactEvent,
    received_at: i64,
    event_id: &str,
    counts: bool,
    text: &mut HeldText,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO contacts (key, name, contact_id, events, first_seen, last_seen,
                last_event_id, last_event_type, last_label, last_summary)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (key) DO UPDATE SET
                events = events + excluded.events,
                first_seen = min(first_seen, excluded.first_seen),
                last_seen = max(last_seen, excluded.last_seen),
                name = CASE WHEN excluded.last_seen >= last_seen
                    THEN coalesce(excluded.name, name) ELSE coalesce(name, excluded.name) END,
                contact_id = CASE WHEN excluded.last_seen >= last_seen
                    THEN coalesce(excluded.contact_id, contact_id)
                    ELSE coalesce(contact_id, excluded.contact_id) END,
                last_event_id = CASE WHEN excluded.last_seen >= last_seen
                    THEN excluded.last_event_id ELSE last_event_id END,
                last_event_type = CASE WHEN excluded.last_seen >= last_seen
                    THEN excluded.last_event_type ELSE last_event_type END,
                last_label = CASE WHEN excluded.last_seen >= last_seen
                    THEN excluded.last_label ELSE last_label END,
                last_summary = CASE WHEN excluded.last_seen >= last_seen
                    THEN excluded.last_summary ELSE last_summary END",
    )?
    .execute(rusqlite::params![
        key,
        event.name,
        event.contact_id,
        i64::from(counts),
        received_at,
        event_id,
        event.event_type,
        event.label,
        event.summary,
    ])?;
    // A separate lookup, not RETURNING: with RETURNING the upsert cost about as much
    // again as the whole rest of the insert (93 vs 48 µs CPU per row, `make bench`).
    let (contact, name, indexed): (i64, Option<String>, Option<String>) = tx
        .prepare_cached("SELECT id, name, search_text FROM contacts WHERE key = ?1")?
        .query_row([key], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
    // The search index changes only when a contact appears or is renamed.
    let searched = format!("{key} {}", name.unwrap_or_default());
    if indexed.as_deref() != Some(searched.as_str()) {
        if let Some(indexed) = indexed {
            text.unindex_contact(contact, indexed);
        }
        tx.prepare_cached("UPDATE contacts SET search_text = ?2 WHERE id = ?1")?
            .execute((contact, &searched))?;
        text.index_contact(contact, searched);
    }
    Ok(())
}
