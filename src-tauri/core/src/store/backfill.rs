//! Events stored before facts and shapes existed get them after an upgrade: a background
//! job derives them from the stored bytes, newest first, a chunk per writer turn so live
//! deliveries never wait long. Cards are dropped at the end and rebuilt from the events.

use bytes::Bytes;
use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::capture::{Capture, Decoding, RawDelivery};
use crate::error::Result;
use crate::store::settings;
use crate::store::shapes::ShapeLearner;

pub const BACKFILL_SETTING: &str = "facts.backfill_through";
/// Events per chunk, and body bytes per chunk (bodies can be 10 MiB each): a live delivery
/// waits at most for this much decoding.
const CHUNK: i64 = 500;
const CHUNK_BYTES: i64 = 8 * 1024 * 1024;

/// Derives one chunk; returns at most how many events are left (0 when done).
pub fn step(conn: &mut Connection, shapes: &mut ShapeLearner, inflate_limit: usize) -> Result<i64> {
    let done = derive_chunk(conn, shapes, inflate_limit);
    if done.is_err() {
        shapes.forget();
    }
    done
}

fn derive_chunk(
    conn: &mut Connection,
    shapes: &mut ShapeLearner,
    inflate_limit: usize,
) -> Result<i64> {
    let Some(through) =
        settings::get_setting(conn, BACKFILL_SETTING)?.and_then(|t| t.parse::<i64>().ok())
    else {
        return Ok(0);
    };
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let rows = stored_deliveries(&tx, through)?;
    let lowest = rows.iter().map(|(seq, _, _)| *seq).min();
    for (seq, raw, event_type) in rows {
        let capture = Capture::build(raw, &Decoding::new(inflate_limit));
        let facts = capture
            .fact
            .as_ref()
            .map(|f| serde_json::to_string(f).expect("a fact serialises"));
        tx.prepare_cached("UPDATE events SET facts = ?2 WHERE seq = ?1")?
            .execute((seq, facts))?;
        // Learn the shape from history; drift is only ever flagged on arrival.
        if let (Some(event_type), Some(paths)) = (event_type, &capture.paths) {
            shapes.record(&tx, &event_type, paths)?;
        }
    }
    shapes.flush(&tx)?;
    // Whether anything is left, and at most how much (seq values below the chunk): a
    // count would walk every older event again at each chunk.
    let left: i64 = match lowest {
        Some(lowest) => {
            let more: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM events WHERE seq < ?1)",
                [lowest],
                |r| r.get(0),
            )?;
            if more { lowest - 1 } else { 0 }
        }
        None => 0,
    };
    match lowest {
        Some(lowest) if left > 0 => {
            settings::put_setting(&tx, BACKFILL_SETTING, &(lowest - 1).to_string())?
        }
        _ => {
            tx.execute("DELETE FROM settings WHERE key = ?1", [BACKFILL_SETTING])?;
            tx.execute("DELETE FROM contact_cards", [])?;
        }
    }
    tx.commit()?;
    Ok(left)
}

/// The next events at or below `through`, newest first, as many as fit the chunk.
fn stored_deliveries(
    tx: &Transaction,
    through: i64,
) -> Result<Vec<(i64, RawDelivery, Option<String>)>> {
    // Sizes first (the size column comes before the body, so no body is read here).
    let mut taken: i64 = 0;
    let mut budget = CHUNK_BYTES;
    {
        let mut sizes = tx
            .prepare_cached("SELECT size FROM events WHERE seq <= ?1 ORDER BY seq DESC LIMIT ?2")?;
        let mut rows = sizes.query((through, CHUNK))?;
        while let Some(row) = rows.next()? {
            let size: i64 = row.get(0)?;
            if taken > 0 && size > budget {
                break;
            }
            budget -= size;
            taken += 1;
        }
    }
    let mut stmt = tx.prepare_cached(
        "SELECT seq, id, received_at, endpoint_id, endpoint_name, method, path, query, headers,
                remote_addr, client_ip, via_tunnel, event_type, body
         FROM events WHERE seq <= ?1 ORDER BY seq DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map((through, taken), |row| {
        let headers: String = row.get("headers")?;
        let body: Vec<u8> = row.get("body")?;
        Ok((
            row.get("seq")?,
            RawDelivery {
                id: row.get("id")?,
                received_at: row.get("received_at")?,
                endpoint_id: row.get("endpoint_id")?,
                endpoint_name: row.get("endpoint_name")?,
                method: row.get("method")?,
                path: row.get("path")?,
                query: row.get("query")?,
                headers: serde_json::from_str(&headers).unwrap_or_default(),
                remote_addr: row.get("remote_addr")?,
                client_ip: row.get("client_ip")?,
                via_tunnel: row.get("via_tunnel")?,
                body: Bytes::from(body),
            },
            row.get("event_type")?,
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
