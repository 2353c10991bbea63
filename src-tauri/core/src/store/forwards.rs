//! Forwards (`forwards`): a row per delivery to pass on to the endpoint's handler, written
//! in the delivery's own transaction so an acknowledged delivery is never lost to its
//! forward; the due ones, their results, and where a delivery goes (its target URL).

use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension, Transaction};
use serde::Serialize;

use crate::error::Result;
use crate::timefmt::now_micros;

/// Headers that belong to one connection, not to the message (RFC 9110 §7.6.1), and those
/// the client sets itself.
pub const NOT_FORWARDED: [&str; 11] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];
/// Sent with every forward and replay: this install's id. A delivery that comes back
/// carrying it (the target is this Hookscope, or leads back to it) is stored but not
/// forwarded again, so a loop ends after one turn. Other hops' ids are kept, as are all
/// headers, so a loop through several Hookscopes ends too.
pub const LOOP_HEADER: &str = "x-hookscope-forwarded-by";
/// What the event detail says of such a delivery's forward.
pub const LOOP_REFUSED: &str = "not forwarded: it came from this Hookscope's own forward or replay, so sending it on would loop (is the forward target this Hookscope's webhook URL?)";

/// Whether these headers say the delivery came from this install's forward or replay.
pub fn came_from(headers: &[(String, String)], install_id: &str) -> bool {
    headers.iter().any(|(name, value)| {
        name.eq_ignore_ascii_case(LOOP_HEADER) && value.split(',').any(|id| id.trim() == install_id)
    })
}

/// The forward of one event, as event JSON shows it.
#[derive(Debug, Clone, Serialize, PartialEq, ts_rs::TS)]
pub struct ForwardView {
    pub target: String,
    /// `pending`, `delivered` or `failed`.
    #[ts(type = "'pending' | 'delivered' | 'failed'")]
    pub state: String,
    pub attempts: i64,
    pub status: Option<i64>,
    pub duration_ms: Option<i64>,
    pub error: Option<String>,
}

/// A forward changed: for the live stream.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct ForwardUpdate {
    pub id: String,
    pub forward: ForwardView,
}

/// `base` + the delivery's sub-path (what follows `/h/TOKEN`) + its query (after any query
/// `base` has of its own). `None` when the sub-path would leave `base`'s path (`..`, also
/// percent-encoded): a sender must not reach other routes of the user's handler.
pub fn target_url(base: &str, path: &str, token: &str, query: Option<&str>) -> Option<String> {
    let suffix = path
        .strip_prefix("/h/")
        .and_then(|rest| rest.strip_prefix(token))
        .unwrap_or("");
    if climbs_out(suffix) {
        return None;
    }
    let mut url = url::Url::parse(base).ok()?;
    let own = url.path().trim_end_matches('/').to_string();
    let joined = format!("{own}{suffix}");
    url.set_path(if joined.is_empty() { "/" } else { &joined });
    let inside = url.path() == own
        || url.path().starts_with(&format!("{own}/"))
        || (own.is_empty() && url.path() == "/");
    if !inside {
        return None;
    }
    let query = match (url.query(), query.filter(|q| !q.is_empty())) {
        (Some(own), Some(theirs)) => Some(format!("{own}&{theirs}")),
        (own, theirs) => own.or(theirs).map(str::to_string),
    };
    url.set_query(query.as_deref());
    Some(url.to_string())
}

/// Whether a sub-path leaves its base once a handler decodes and normalises it, the way
/// handlers do: percent-decoding (up to three times: `%252e` is `%2e` after one), `\\` as
/// well as `/` between segments, and `;params` after a segment (`..;/` in Java servers).
fn climbs_out(sub_path: &str) -> bool {
    let leaves = |text: &str| {
        let mut depth = 0i32;
        for segment in text.split(['/', '\\']) {
            match segment.split(';').next().unwrap_or("") {
                ".." => depth -= 1,
                "" | "." => {}
                _ => depth += 1,
            }
            if depth < 0 {
                return true;
            }
        }
        false
    };
    let mut text = sub_path.to_string();
    for _ in 0..4 {
        if leaves(&text) {
            return true;
        }
        let decoded = percent_encoding::percent_decode_str(&text)
            .decode_utf8_lossy()
            .into_owned();
        if decoded == text {
            return false;
        }
        text = decoded;
    }
    // Still changing after four rounds of decoding: nothing a handler should be sent.
    true
}

/// A forward that is due, with what to send.
pub struct Due {
    pub seq: i64,
    /// The endpoint: one delivery at a time per endpoint's handler.
    pub queue: String,
    pub event_id: String,
    pub target: String,
    pub attempts: i64,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The earliest due forward of each endpoint not in `skip`.
pub fn next_due(conn: &Connection, skip: &HashSet<String>) -> Result<Vec<Due>> {
    // SQLite takes the other columns from the row holding min(next_at).
    let mut stmt = conn.prepare_cached(
        "SELECT f.event_seq, f.target, f.attempts, d.id, d.method, d.headers, d.body,
                d.endpoint_id, min(f.next_at)
         FROM forwards f JOIN deliveries d ON d.seq = f.event_seq
         WHERE f.state = 'pending' AND f.next_at <= ?1
         GROUP BY d.endpoint_id",
    )?;
    let mut rows = stmt.query([now_micros()])?;
    let mut due: Vec<Due> = Vec::new();
    while let Some(row) = rows.next()? {
        let queue: String = row.get(7)?;
        if skip.contains(&queue) {
            continue;
        }
        let headers: String = row.get(5)?;
        due.push(Due {
            seq: row.get(0)?,
            target: row.get(1)?,
            attempts: row.get(2)?,
            event_id: row.get(3)?,
            method: row.get(4)?,
            headers: serde_json::from_str(&headers).unwrap_or_default(),
            body: row.get(6)?,
            queue,
        });
    }
    Ok(due)
}

/// Queues the forward of the delivery just stored as `seq` (in its transaction). One that
/// came back from this install's own forward is recorded as not sent (see [`LOOP_HEADER`]).
pub fn queue(
    tx: &Transaction,
    seq: i64,
    target: &str,
    received_at: i64,
    looped: bool,
) -> Result<()> {
    let (state, error) = if looped {
        ("failed", Some(LOOP_REFUSED))
    } else {
        ("pending", None)
    };
    tx.prepare_cached(
        "INSERT INTO forwards (event_seq, target, state, next_at, updated_at, error)
         VALUES (:seq, :target, :state, :at, :at, :error)",
    )?
    .execute(rusqlite::named_params! {
        ":seq": seq, ":target": target, ":state": state, ":at": received_at, ":error": error,
    })?;
    Ok(())
}

/// The forward of the delivery `seq` as event JSON shows it, if it has one.
pub fn view(conn: &Connection, seq: i64) -> Result<Option<ForwardView>> {
    Ok(conn
        .prepare_cached(
            "SELECT target, state, attempts, status, duration_ms, error FROM forwards
             WHERE event_seq = ?1",
        )?
        .query_row([seq], |r| {
            Ok(ForwardView {
                target: r.get(0)?,
                state: r.get(1)?,
                attempts: r.get(2)?,
                status: r.get(3)?,
                duration_ms: r.get(4)?,
                error: r.get(5)?,
            })
        })
        .optional()?)
}

/// What one attempt at a forward came to.
pub struct Attempt<'a> {
    pub seq: i64,
    /// `delivered`, `failed` or `pending` (another try at `next_at`).
    pub state: &'a str,
    pub attempts: i64,
    pub next_at: i64,
    pub status: Option<i64>,
    pub duration_ms: i64,
    pub error: Option<&'a str>,
    /// JSON list of the answer's `[name, value]`.
    pub headers: Option<&'a str>,
    pub body: Option<&'a [u8]>,
}

pub fn record_attempt(conn: &Connection, attempt: &Attempt) -> Result<()> {
    conn.execute(
        "UPDATE forwards SET state = :state, attempts = :attempts, next_at = :next_at,
            status = :status, duration_ms = :duration_ms, error = :error,
            response_headers = :headers, response_body = :body, updated_at = :now
         WHERE event_seq = :seq",
        rusqlite::named_params! {
            ":seq": attempt.seq,
            ":state": attempt.state,
            ":attempts": attempt.attempts,
            ":next_at": attempt.next_at,
            ":status": attempt.status,
            ":duration_ms": attempt.duration_ms,
            ":error": attempt.error,
            ":headers": attempt.headers,
            ":body": attempt.body,
            ":now": now_micros(),
        },
    )?;
    Ok(())
}

/// Forwards of the endpoint that are still waiting end here, with `reason`.
pub fn stop_pending(conn: &Connection, endpoint_id: &str, reason: &str) -> Result<()> {
    conn.execute(
        "UPDATE forwards SET state = 'failed', error = ?2, updated_at = ?3
         WHERE state = 'pending'
           AND event_seq IN (SELECT seq FROM deliveries WHERE endpoint_id = ?1)",
        (endpoint_id, reason, now_micros()),
    )?;
    Ok(())
}

/// Forwards of the endpoint still waiting go to its new handler `base` at once.
pub fn retarget_pending(
    conn: &Connection,
    endpoint_id: &str,
    token: &str,
    base: &str,
) -> Result<()> {
    let pending: Vec<(i64, String, Option<String>)> = conn
        .prepare(
            "SELECT f.event_seq, d.path, d.query FROM forwards f
             JOIN deliveries d ON d.seq = f.event_seq
             WHERE f.state = 'pending' AND d.endpoint_id = ?1",
        )?
        .query_map([endpoint_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (seq, path, query) in pending {
        match target_url(base, &path, token, query.as_deref()) {
            Some(url) => conn.execute(
                "UPDATE forwards SET target = ?2, next_at = ?3 WHERE event_seq = ?1",
                (seq, url, now_micros()),
            )?,
            None => conn.execute(
                "UPDATE forwards SET state = 'failed', error = ?2 WHERE event_seq = ?1",
                (seq, "the sub-path leaves the handler's path"),
            )?,
        };
    }
    Ok(())
}

/// What a forward target last answered.
pub struct TargetAnswer {
    pub status: Option<i64>,
    /// JSON list of `[name, value]`.
    pub headers: Option<String>,
    /// The first [`RESPONSE_LIMIT`] bytes.
    pub body: Option<Vec<u8>>,
}

/// The target's last answer to an event's forward; `None` when it was not forwarded.
pub fn last_answer(conn: &Connection, event_id: &str) -> Result<Option<TargetAnswer>> {
    Ok(conn
        .prepare_cached(
            "SELECT f.status, f.response_headers, f.response_body
             FROM forwards f JOIN deliveries d ON d.seq = f.event_seq WHERE d.id = ?1",
        )?
        .query_row([event_id], |r| {
            Ok(TargetAnswer {
                status: r.get(0)?,
                headers: r.get(1)?,
                body: r.get(2)?,
            })
        })
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_gets_the_sub_path_and_both_queries() {
        let url = |base, path, query| target_url(base, path, "tok", query);
        assert_eq!(
            url(
                "http://localhost:3000/webhooks/systeme",
                "/h/tok/orders/1",
                Some("x=1")
            )
            .unwrap(),
            "http://localhost:3000/webhooks/systeme/orders/1?x=1"
        );
        assert_eq!(
            url("http://localhost:3000", "/h/tok", None).unwrap(),
            "http://localhost:3000/"
        );
        assert_eq!(
            url("https://h.example/in?key=abc", "/h/tok", Some("a=b")).unwrap(),
            "https://h.example/in?key=abc&a=b"
        );
    }

    #[test]
    fn a_sub_path_cannot_leave_the_handler_path() {
        let base = "http://localhost:3000/webhooks/systeme";
        for path in [
            "/h/tok/../../admin",
            "/h/tok/%2e%2e/%2e%2e/admin",
            "/h/tok/%2E%2E/x",
            "/h/tok/..",
            "/h/tok/..%2fadmin",
            "/h/tok/..%2Fadmin",
            "/h/tok/..%5cadmin",
            "/h/tok/..\\admin",
            "/h/tok/..;/admin",
            "/h/tok/%2e%2e;x/admin",
            "/h/tok/a/..%2f..%2fadmin",
            "/h/tok/%252e%252e%252fadmin",
            "/h/tok/%25252e%25252e/admin",
        ] {
            assert_eq!(target_url(base, path, "tok", None), None, "{path}");
        }
        assert!(
            target_url(base, "/h/tok/a/../b", "tok", None).is_some(),
            "stays inside"
        );
    }
}
