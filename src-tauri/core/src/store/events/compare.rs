//! Two stored events compared ([`crate::capture::diff`]), and which event one is best
//! compared with: its previous attempt, or the previous event of its type.

use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;
use ts_rs::TS;

use super::{EventMeta, get_event};
use crate::capture::diff::{self, BodyDiff, HeadersDiff, Side};
use crate::error::{Error, Result};

/// Two events compared (`GET /api/diff`, `hookscope diff --json`).
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct EventDiff {
    pub a: DiffSide,
    pub b: DiffSide,
    pub headers: HeadersDiff,
    pub body: BodyDiff,
}

/// Which event a side is.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct DiffSide {
    pub id: String,
    pub received_at: String,
    pub endpoint_name: String,
    pub label: String,
    pub summary: String,
    pub event_type: Option<String>,
    pub message_id: Option<String>,
    pub attempt: i64,
}

impl From<&EventMeta> for DiffSide {
    fn from(meta: &EventMeta) -> DiffSide {
        DiffSide {
            id: meta.id.clone(),
            received_at: meta.received_at.clone(),
            endpoint_name: meta.endpoint_name.clone(),
            label: meta.label.clone(),
            summary: meta.summary.clone(),
            event_type: meta.event_type.clone(),
            message_id: meta.message_id.clone(),
            attempt: meta.attempt,
        }
    }
}

/// The events `a` and `b` compared; a compressed body is inflated as far as
/// `inflate_limit`.
pub fn compare(conn: &Connection, a: &str, b: &str, inflate_limit: usize) -> Result<EventDiff> {
    let a = get_event(conn, a)?;
    let b = get_event(conn, b)?;
    let a_headers = headers_of(&a.meta);
    let b_headers = headers_of(&b.meta);
    let compared = diff::compare(
        Side {
            headers: &a_headers,
            body: &a.body,
        },
        Side {
            headers: &b_headers,
            body: &b.body,
        },
        inflate_limit,
    );
    Ok(EventDiff {
        a: (&a.meta).into(),
        b: (&b.meta).into(),
        headers: compared.headers,
        body: compared.body,
    })
}

fn headers_of(meta: &EventMeta) -> Vec<(String, String)> {
    serde_json::from_str(meta.headers.get()).unwrap_or_default()
}

/// The event another is best compared with (`GET /api/events/{id}/previous`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct Previous {
    pub id: String,
    pub reason: PreviousReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum PreviousReason {
    /// The attempt before it at the same message (`X-Webhook-Message-Id`).
    Attempt,
    /// The identical unsigned delivery it probably repeats.
    Repeat,
    /// The previous first delivery of the same event type on the same endpoint.
    SameType,
}

/// For a retry, the attempt before it; for a probable repeat, what it repeats; else the
/// previous event of its type on its endpoint (a first delivery, not a retry). Events are
/// ordered by (time, id), as attempts are.
pub fn previous(conn: &Connection, id: &str) -> Result<Previous> {
    let row = conn
        .query_row(
            "SELECT endpoint_id, received_at, message_id, attempt, repeat_of, event_type
             FROM events WHERE id = ?1",
            [id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                ))
            },
        )
        .optional()?;
    let Some((endpoint, at, message_id, attempt, repeat_of, event_type)) = row else {
        return Err(Error::NotFound(format!("no event {id}")));
    };
    let earlier = "(received_at < ?3 OR (received_at = ?3 AND id < ?4))
        ORDER BY received_at DESC, id DESC LIMIT 1";
    if let (Some(message_id), true) = (&message_id, attempt > 1) {
        let sql = format!(
            "SELECT id FROM events WHERE endpoint_id = ?1 AND message_id = ?2 AND {earlier}"
        );
        if let Some(found) = conn
            .query_row(&sql, (&endpoint, message_id, at, id), |r| r.get(0))
            .optional()?
        {
            return Ok(Previous {
                id: found,
                reason: PreviousReason::Attempt,
            });
        }
    }
    if let Some(first) = repeat_of {
        return Ok(Previous {
            id: first,
            reason: PreviousReason::Repeat,
        });
    }
    let Some(event_type) = event_type else {
        return Err(Error::NotFound(format!(
            "event {id} has no event type: pick the event to compare it with"
        )));
    };
    let sql = format!(
        "SELECT id FROM events WHERE endpoint_id = ?1 AND event_type = ?2 AND attempt = 1
           AND {earlier}"
    );
    conn.query_row(&sql, (&endpoint, &event_type, at, id), |r| r.get(0))
        .optional()?
        .map(|found| Previous {
            id: found,
            reason: PreviousReason::SameType,
        })
        .ok_or_else(|| {
            Error::NotFound(format!(
                "no {event_type} event before {id} on its endpoint to compare it with"
            ))
        })
}
