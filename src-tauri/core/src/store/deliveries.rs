//! Deliveries as received (`deliveries`): the request line, headers, addresses and body
//! byte for byte. The acknowledging transaction writes here (and a forward's queue entry)
//! and nothing else; everything else in the store is derived from these rows by the
//! indexer and can be rebuilt from them.

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, Transaction};

use crate::capture::RawDelivery;
use crate::error::Result;

/// How many of a batch were new, and how many the store held already.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Saved {
    pub imported: u64,
    pub already_present: u64,
}

/// Stores a batch of deliveries as received (an import), in one transaction.
pub fn insert_batch(conn: &mut rusqlite::Connection, batch: &[RawDelivery]) -> Result<Saved> {
    let mut saved = Saved::default();
    let tx = conn.transaction()?;
    for delivery in batch {
        match insert(&tx, delivery)? {
            Some(_) => saved.imported += 1,
            None => saved.already_present += 1,
        }
    }
    tx.commit()?;
    Ok(saved)
}

/// Stores a delivery as it arrived; returns its `seq`, or `None` when a delivery with the
/// same id is already stored (an import seen before).
pub fn insert(tx: &Transaction, raw: &RawDelivery) -> Result<Option<i64>> {
    let inserted = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO deliveries (id, received_at, endpoint_id, endpoint_name,
                method, path, query, headers, remote_addr, client_ip, via_tunnel, body)
             VALUES (:id, :received_at, :endpoint_id, :endpoint_name, :method, :path, :query,
                :headers, :remote_addr, :client_ip, :via_tunnel, :body)",
        )?
        .execute(rusqlite::named_params! {
            ":id": raw.id,
            ":received_at": raw.received_at,
            ":endpoint_id": raw.endpoint_id,
            ":endpoint_name": raw.endpoint_name,
            ":method": raw.method,
            ":path": raw.path,
            ":query": raw.query,
            ":headers": headers_json(&raw.headers),
            ":remote_addr": raw.remote_addr,
            ":client_ip": raw.client_ip,
            ":via_tunnel": raw.via_tunnel,
            ":body": &raw.body[..],
        })?;
    Ok((inserted > 0).then(|| tx.last_insert_rowid()))
}

/// How headers are stored: a JSON list of `[name, value]` in arrival order.
pub fn headers_json(headers: &[(String, String)]) -> String {
    serde_json::to_string(headers).expect("a list of string pairs serialises")
}

/// Up to `rows` deliveries after `seq`, in order, stopping once their bodies pass
/// `bytes` (bodies can be 10 MiB each).
pub fn after(
    conn: &Connection,
    seq: i64,
    rows: usize,
    bytes: usize,
) -> Result<Vec<(i64, RawDelivery)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, id, received_at, endpoint_id, endpoint_name, method, path, query, headers,
                remote_addr, client_ip, via_tunnel, body
         FROM deliveries WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    let mut found = stmt.query((seq, rows as i64))?;
    let mut out = Vec::new();
    let mut total = 0;
    while let Some(row) = found.next()? {
        let raw = raw_from_row(row)?;
        total += raw.body.len();
        out.push((row.get("seq")?, raw));
        if total >= bytes {
            break;
        }
    }
    Ok(out)
}

/// The seqs and body sizes of up to `rows` deliveries after `seq`, in order: what a reader
/// sizes its next read by before it holds any body.
pub fn sizes_after(conn: &Connection, seq: i64, rows: usize) -> Result<Vec<(i64, usize)>> {
    Ok(conn
        .prepare_cached(
            "SELECT seq, length(body) FROM deliveries WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?
        .query_map((seq, rows as i64), |r| {
            Ok((r.get(0)?, r.get::<_, i64>(1)?.max(0) as usize))
        })?
        .collect::<rusqlite::Result<_>>()?)
}

/// One delivery by id, as received, with its seq.
pub fn get(conn: &Connection, id: &str) -> Result<Option<(i64, RawDelivery)>> {
    Ok(conn
        .prepare_cached(
            "SELECT seq, id, received_at, endpoint_id, endpoint_name, method, path, query,
                    headers, remote_addr, client_ip, via_tunnel, body
             FROM deliveries WHERE id = ?1",
        )?
        .query_row([id], |row| Ok((row.get("seq")?, raw_from_row(row)?)))
        .optional()?)
}

/// One delivery by seq, as received.
pub fn by_seq(conn: &Connection, seq: i64) -> Result<Option<RawDelivery>> {
    Ok(conn
        .prepare_cached(
            "SELECT seq, id, received_at, endpoint_id, endpoint_name, method, path, query,
                    headers, remote_addr, client_ip, via_tunnel, body
             FROM deliveries WHERE seq = ?1",
        )?
        .query_row([seq], raw_from_row)
        .optional()?)
}

/// One delivery by seq without its body (left empty), for a reader that takes the body a
/// slice at a time ([`body_slice`]).
pub fn head_by_seq(conn: &Connection, seq: i64) -> Result<Option<RawDelivery>> {
    Ok(conn
        .prepare_cached(
            "SELECT seq, id, received_at, endpoint_id, endpoint_name, method, path, query,
                    headers, remote_addr, client_ip, via_tunnel, x'' AS body
             FROM deliveries WHERE seq = ?1",
        )?
        .query_row([seq], raw_from_row)
        .optional()?)
}

/// Up to `len` bytes of the delivery `seq`'s body from `offset`, read from the store's
/// pages without loading the rest (empty past its end).
pub fn body_slice(conn: &Connection, seq: i64, offset: usize, len: usize) -> Result<Vec<u8>> {
    let blob = conn.blob_open(rusqlite::MAIN_DB, "deliveries", "body", seq, true)?;
    let size = blob.len();
    let end = (offset + len).min(size);
    if offset >= end {
        return Ok(Vec::new());
    }
    let mut slice = vec![0u8; end - offset];
    blob.read_at_exact(&mut slice, offset)?;
    Ok(slice)
}

fn raw_from_row(row: &rusqlite::Row) -> rusqlite::Result<RawDelivery> {
    let headers: String = row.get("headers")?;
    let body: Vec<u8> = row.get("body")?;
    Ok(RawDelivery {
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
    })
}

/// Whether the delivery `seq` is (still) stored.
pub fn exists(conn: &Connection, seq: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM deliveries WHERE seq = ?1")?
        .query_row([seq], |_| Ok(()))
        .optional()?
        .is_some())
}

/// The newest delivery's seq (0 for an empty store).
pub fn last_seq(conn: &Connection) -> Result<i64> {
    Ok(
        conn.query_row("SELECT coalesce(max(seq), 0) FROM deliveries", [], |r| {
            r.get(0)
        })?,
    )
}

/// How many deliveries there are after `seq`.
pub fn count_after(conn: &Connection, seq: i64) -> Result<i64> {
    let newest = last_seq(conn)?;
    // Bodies sit in the table's own pages: counting a long range there reads them all (1.4
    // GB, a second, for a million). The ids' index holds the seqs in a twentieth of that;
    // `+seq` makes SQLite scan it instead, which for a short range would be the slower.
    let sql = if newest - seq > 50_000 {
        "SELECT count(*) FROM deliveries WHERE +seq > ?1"
    } else {
        "SELECT count(*) FROM deliveries WHERE seq > ?1"
    };
    Ok(conn.query_row(sql, [seq], |r| r.get(0))?)
}

/// How many deliveries the store holds.
pub fn count(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT count(*) FROM deliveries", [], |r| r.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::db::{self, Synchronous};

    /// Whichever way it counts (by the table for a short range, by the ids' index for a
    /// long one), the count is what is there, gaps left by erasures included.
    #[test]
    fn deliveries_after_a_position_are_counted_either_way() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn =
            db::open_writer(&db::database_path(dir.path()), Synchronous::Normal).unwrap();
        let tx = conn.transaction().unwrap();
        tx.execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60000)
             INSERT INTO deliveries (id, received_at, endpoint_id, endpoint_name, method, path,
                                     headers, body)
             SELECT 'd' || i, i, 'ep', 'Default', 'POST', '/h/t', '[]', x'00' FROM n;
             DELETE FROM deliveries WHERE seq % 7 = 0;",
        )
        .unwrap();
        tx.commit().unwrap();
        for seq in [0, 1, 9_999, 30_000, 59_000, 59_999, 60_000, 70_000] {
            let by_rowid: i64 = conn
                .query_row(
                    "SELECT count(*) FROM deliveries WHERE seq > ?1",
                    [seq],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(count_after(&conn, seq).unwrap(), by_rowid, "after {seq}");
        }
        assert_eq!(count_after(&conn, 0).unwrap(), 60_000 - 60_000 / 7);
    }
}
