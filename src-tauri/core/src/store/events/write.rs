//! Writing derived events: the row of a delivery as decoded, its full-text entry, and what
//! only the store can tell about it (which attempt at its message it is, whether it
//! repeats a body just before), also once earlier deliveries arrive later (imports).

use rusqlite::{OptionalExtension, Transaction};

use crate::capture::Capture;
use crate::capture::decode;
use crate::capture::signature::Verdict;
use crate::error::Result;

/// Identical unsigned deliveries on one endpoint this close together are probable repeats.
/// The derived schema's `repeat_bucket` divides by the same figure.
pub const REPEAT_WINDOW_MICROS: i64 = 5 * 60 * 1_000_000;

/// The repeat windows (`events.repeat_bucket`) holding every time from `from` to `to`, a
/// window apart at most: two, or one twice. SQLite's integer division, like Rust's,
/// truncates, and is monotonic, so no window lies between them.
pub fn repeat_buckets(from: i64, to: i64) -> (i64, i64) {
    debug_assert!(to - from <= REPEAT_WINDOW_MICROS);
    (from / REPEAT_WINDOW_MICROS, to / REPEAT_WINDOW_MICROS)
}

/// What the store knows of a delivery before its row is written.
pub struct Placement<'a> {
    pub message_id: Option<&'a str>,
    /// 1 for the first delivery of a message (and for deliveries without a message id).
    pub attempt: i64,
    /// SHA-256 of an unsigned body, by which repeats are found.
    pub body_hash: Option<&'a [u8]>,
    /// The first identical unsigned delivery shortly before, if any.
    pub repeat_of: Option<&'a str>,
    /// The event's facts as JSON.
    pub facts: Option<&'a str>,
    /// Its shape's variant ([`crate::capture::shape::fingerprint`]), when it has one.
    pub variant: Option<i64>,
}

/// Inserts the event derived from the delivery `seq`.
pub fn insert(tx: &Transaction, seq: i64, capture: &Capture, placement: &Placement) -> Result<()> {
    let raw = &capture.raw;
    let decoded = &capture.decoded;
    tx.prepare_cached(
        "INSERT INTO events (seq, id, received_at, endpoint_id, signature, message_id, attempt,
            body_hash, repeat_of, content_type, content_encoding, size, body_kind, source,
            family, event_type, label, summary, contact_key, contact_email, contact_id,
            contact_name, occurred_at, facts, variant, search_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
            ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26)",
    )?
    // Positional: looking 26 names up per row was 1% of a catch-up.
    .execute(rusqlite::params![
        seq,
        raw.id,
        raw.received_at,
        raw.endpoint_id,
        capture.signature.as_str(),
        placement.message_id,
        placement.attempt,
        placement.body_hash,
        placement.repeat_of,
        capture.content_type,
        capture.content_encoding,
        raw.body.len() as i64,
        capture.body_kind.as_str(),
        decoded.source.as_str(),
        decoded.family.as_str(),
        decoded.event_type,
        decoded.label,
        decoded.summary,
        decoded.contact_key(),
        decoded.contact_email,
        decoded.contact_id,
        decoded.contact_name,
        decoded.occurred_at,
        placement.facts,
        placement.variant,
        capture.search_hash,
    ])?;
    Ok(())
}

/// Takes the event `seq`'s row out of the full-text index, and with it every token of
/// `text`, which must be the text it was indexed with (see `events.search_hash`): the
/// index keeps no copy to find them by.
pub fn unindex_text(tx: &Transaction, seq: i64, text: &str) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO events_fts (events_fts, rowid, text) VALUES ('delete', ?1, ?2)",
    )?
    .execute((seq, text))?;
    Ok(())
}

/// How the event `seq` differed from its type's shape (a JSON list of changes).
pub fn set_drift(tx: &Transaction, seq: i64, drift: &str) -> Result<()> {
    tx.prepare_cached("UPDATE events SET drift = ?2 WHERE seq = ?1")?
        .execute((seq, drift))?;
    Ok(())
}

/// `X-Webhook-Message-Id` and which attempt at that message this delivery is.
pub fn attempt_of(tx: &Transaction, capture: &Capture) -> Result<(Option<String>, i64)> {
    let raw = &capture.raw;
    let Some(message_id) = decode::header(&raw.headers, "x-webhook-message-id")
        .map(str::trim)
        .filter(|m| !m.is_empty())
    else {
        return Ok((None, 1));
    };
    let earlier: i64 = tx
        .prepare_cached(
            "SELECT count(*) FROM events
             WHERE endpoint_id = ?1 AND message_id = ?2 AND id <> ?3
               AND (received_at < ?4 OR (received_at = ?4 AND id < ?3))",
        )?
        .query_row(
            (&raw.endpoint_id, message_id, &raw.id, raw.received_at),
            |r| r.get(0),
        )?;
    Ok((Some(message_id.to_string()), earlier + 1))
}

/// For unsigned deliveries (automation webhooks carry no message id): the body's hash and
/// the earliest identical delivery on the same endpoint within [`REPEAT_WINDOW_MICROS`].
pub fn repeat_of(tx: &Transaction, capture: &Capture) -> Result<(Option<Vec<u8>>, Option<String>)> {
    // Made by Capture::build for an unsigned, non-empty body; a secret never makes an
    // unsigned delivery signed, nor the reverse.
    let raw = &capture.raw;
    debug_assert_eq!(
        capture.body_hash.is_some(),
        capture.signature == Verdict::Unsigned && !raw.body.is_empty()
    );
    let Some(hash) = &capture.body_hash else {
        return Ok((None, None));
    };
    let first = first_identical(tx, &raw.endpoint_id, hash, &raw.id, raw.received_at)?;
    Ok((Some(hash.clone()), first))
}

// INDEXED BY: with no statistics, the planner takes the endpoint's time index for the
// window and reads every delivery of it; SQLite refuses the statement if the bodies' index
// cannot serve it.
// One window at a time: the index then gives its copies in (time, id) order, and no
// sorter is made per lookup (it was most of the lookup's cost).
const FIRST_IDENTICAL: &str = "SELECT id FROM events INDEXED BY events_by_body
     WHERE endpoint_id = ?1 AND repeat_bucket = ?6 AND body_hash = ?2
       AND received_at >= ?3
       AND (received_at < ?4 OR (received_at = ?4 AND id < ?5))
     ORDER BY received_at, id LIMIT 1";

const LATER_COPIES: &str = "SELECT seq, id, received_at, attempt, contact_key, repeat_of
     FROM events INDEXED BY events_by_body
     WHERE endpoint_id = ?1 AND repeat_bucket IN (?6, ?7) AND body_hash = ?2
       AND (received_at > ?4 OR (received_at = ?4 AND id > ?3))
       AND received_at <= ?5";

/// Copies of a body from `?3` to `?4` (an erased copy's time and a window after), oldest
/// first: those whose first copy may have been the erased one.
pub const COPIES_AFTER: &str = "SELECT seq, id, received_at, repeat_of, contact_key
     FROM events INDEXED BY events_by_body
     WHERE endpoint_id = ?1 AND repeat_bucket IN (?5, ?6) AND body_hash = ?2
       AND received_at BETWEEN ?3 AND ?4
     ORDER BY received_at, id";

/// The earliest event on `endpoint` with this body hash within the repeat window before
/// the event `id` at `at`. Events are ordered by (time, id), as attempts are, so that two
/// copies received in the same microsecond are told apart the same way in any insert order.
pub fn first_identical(
    tx: &Transaction,
    endpoint: &str,
    hash: &[u8],
    id: &str,
    at: i64,
) -> Result<Option<String>> {
    let from = at - REPEAT_WINDOW_MICROS;
    let (older, newer) = repeat_buckets(from, at);
    let mut lookup = tx.prepare_cached(FIRST_IDENTICAL)?;
    // Every time in the older window comes before the newer one's: the first copy found,
    // window by window, is the earliest.
    let windows: &[i64] = if older == newer {
        &[older]
    } else {
        &[older, newer]
    };
    for bucket in windows {
        let first = lookup
            .query_row((endpoint, hash, from, at, id, bucket), |r| r.get(0))
            .optional()?;
        if first.is_some() {
            return Ok(first);
        }
    }
    Ok(None)
}

/// A later delivery of the same message as an event just stored.
pub struct LaterAttempt {
    pub seq: i64,
    pub attempt: i64,
    pub contact_key: Option<String>,
    pub not_a_repeat: bool,
}

/// Deliveries of `message_id` stored after the event `id` (at `at`) on `endpoint`.
pub fn later_attempts(
    tx: &Transaction,
    endpoint: &str,
    message_id: &str,
    id: &str,
    at: i64,
) -> Result<Vec<LaterAttempt>> {
    Ok(tx
        .prepare_cached(
            "SELECT seq, attempt, contact_key, repeat_of IS NULL FROM events
             WHERE endpoint_id = ?1 AND message_id = ?2 AND id <> ?3
               AND (received_at > ?4 OR (received_at = ?4 AND id > ?3))",
        )?
        .query_map((endpoint, message_id, id, at), |r| {
            Ok(LaterAttempt {
                seq: r.get(0)?,
                attempt: r.get(1)?,
                contact_key: r.get(2)?,
                not_a_repeat: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?)
}

/// One more delivery of its message came before the event `seq`.
pub fn count_earlier_attempt(tx: &Transaction, seq: i64) -> Result<()> {
    tx.prepare_cached("UPDATE events SET attempt = attempt + 1 WHERE seq = ?1")?
        .execute([seq])?;
    Ok(())
}

/// A later event with the same body as one just stored.
pub struct LaterCopy {
    pub seq: i64,
    pub id: String,
    pub received_at: i64,
    pub attempt: i64,
    pub contact_key: Option<String>,
    pub repeat_of: Option<String>,
}

/// Events on `endpoint` with body hash `hash` stored after the event `id` (at `at`),
/// within the repeat window.
pub fn later_copies(
    tx: &Transaction,
    endpoint: &str,
    hash: &[u8],
    id: &str,
    at: i64,
) -> Result<Vec<LaterCopy>> {
    let to = at + REPEAT_WINDOW_MICROS;
    let buckets = repeat_buckets(at, to);
    Ok(tx
        .prepare_cached(LATER_COPIES)?
        .query_map((endpoint, hash, id, at, to, buckets.0, buckets.1), |r| {
            Ok(LaterCopy {
                seq: r.get(0)?,
                id: r.get(1)?,
                received_at: r.get(2)?,
                attempt: r.get(3)?,
                contact_key: r.get(4)?,
                repeat_of: r.get(5)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?)
}

/// The event `seq` repeats the body of the event `first`.
pub fn set_repeat_of(tx: &Transaction, seq: i64, first: Option<&str>) -> Result<()> {
    tx.prepare_cached("UPDATE events SET repeat_of = ?2 WHERE seq = ?1")?
        .execute((seq, first))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::db::{self, Synchronous};

    /// Each repeat lookup seeks the bodies' index by endpoint, window and hash: a scan of
    /// an endpoint's bodies would cost a catch-up a million rows per delivery.
    #[test]
    fn repeat_lookups_seek_the_bodies_index_by_window_and_hash() {
        let dir = tempfile::tempdir().unwrap();
        let conn = db::open_writer(&db::database_path(dir.path()), Synchronous::Normal).unwrap();
        for sql in [FIRST_IDENTICAL, LATER_COPIES, COPIES_AFTER] {
            let mut explain = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let zeros = vec![0; explain.parameter_count()];
            let plan: Vec<String> = explain
                .query_map(rusqlite::params_from_iter(zeros), |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            let plan = plan.join(" / ");
            if sql == FIRST_IDENTICAL {
                assert!(
                    !plan.contains("TEMP B-TREE"),
                    "no sorter per lookup: {plan}"
                );
            }
            assert!(
                plan.contains(
                    "USING INDEX events_by_body (endpoint_id=? AND repeat_bucket=? AND body_hash=?"
                ),
                "{sql}: {plan}"
            );
        }
    }

    #[test]
    fn two_windows_hold_every_time_a_window_apart() {
        let w = REPEAT_WINDOW_MICROS;
        for from in [-3 * w / 2, -w, -w / 2, -1, 0, 1, w / 2, w - 1, w, 7 * w + 3] {
            let (a, b) = repeat_buckets(from, from + w);
            for t in [
                from,
                from + 1,
                from + w / 3,
                from + w / 2,
                from + w - 1,
                from + w,
            ] {
                let bucket = t / w;
                assert!(bucket == a || bucket == b, "{t} in {a} or {b}");
            }
        }
    }
}
