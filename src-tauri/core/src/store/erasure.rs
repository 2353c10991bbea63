//! Erasure: deliveries removed with every trace derived from them, for a person who asked
//! to be forgotten ([`forget`]) or by age ([`crate::store::retention`]). What remains is
//! made as a reindex would make it: attempts and repeats renumbered, contacts' rows and
//! cards rebuilt, shapes and drift learned again. Freed pages are overwritten (the
//! connection runs with `secure_delete`), the full-text indexes are merged so no deleted
//! token survives in old segments, and the log is checkpointed and truncated
//! ([`scrub`]); a crash before the scrub finishes it at the next start.

use std::collections::BTreeSet;

use rusqlite::{Connection, OptionalExtension, Transaction};
use serde::Serialize;

use crate::capture::mentions::Address;
use crate::capture::shape::Paths;
use crate::capture::{Capture, Decoding, search_hash};
use crate::error::{Error, Result};
use crate::store::checkpoint::{Mode, wal_checkpoint};
use crate::store::events::write::{
    COPIES_AFTER, REPEAT_WINDOW_MICROS, first_identical, repeat_buckets, unindex_text,
};
use crate::store::full_text::HeldText;
use crate::store::settings::{self, Setting};
use crate::store::shapes;
use crate::store::{cards, contacts, deliveries};

/// The deliveries to erase for one person.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Erasure {
    pub email: String,
    /// Deliveries about them (their contact).
    pub keyed: Vec<i64>,
    /// Other deliveries that mention their email anywhere (payload, headers, URL).
    pub mentioning: Vec<i64>,
    /// The newest delivery looked at: [`forget`] looks at those after it again, inside
    /// its transaction, so none acknowledged in between is missed.
    pub scanned_through: i64,
}

/// What forgetting someone removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, ts_rs::TS)]
pub struct ErasureReport {
    pub email: String,
    /// Deliveries about them.
    pub deliveries: u64,
    /// Other deliveries that mentioned their email, also removed.
    pub mentioning: u64,
}

/// Finds every delivery about `address` or mentioning it: events keyed to the contact,
/// deliveries not indexed yet decoded to see whom they are about, then every stored
/// delivery looked through for the whole address in any part and encoding
/// ([`Address::mentioned_in`]). Reads only.
pub fn find(conn: &Connection, address: &Address, inflate_limit: usize) -> Result<Erasure> {
    let mut found = Erasure {
        email: address.as_str().to_string(),
        ..Erasure::default()
    };
    scan(conn, &mut found, address, inflate_limit)?;
    Ok(found)
}

impl Erasure {
    /// Every delivery it erases, about them or mentioning them, in store order.
    pub fn seqs(&self) -> Vec<i64> {
        let mut all: Vec<i64> = self.keyed.iter().chain(&self.mentioning).copied().collect();
        all.sort_unstable();
        all
    }
}

/// Adds to `found` what the deliveries after `found.scanned_through` hold about them.
fn scan(
    conn: &Connection,
    found: &mut Erasure,
    address: &Address,
    inflate_limit: usize,
) -> Result<()> {
    let key = address.as_str();
    let mut keyed: BTreeSet<i64> = found.keyed.iter().copied().collect();
    let indexed: Vec<i64> = conn
        .prepare_cached("SELECT seq FROM events WHERE contact_key = ?1 AND seq > ?2")?
        .query_map((key, found.scanned_through), |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    keyed.extend(indexed);
    let indexed_through = crate::store::indexer::position(conn)?;
    loop {
        let batch = deliveries::after(conn, found.scanned_through, 1_000, 32 * 1024 * 1024)?;
        let Some(&(last, _)) = batch.last() else {
            break;
        };
        for (seq, raw) in batch {
            if keyed.contains(&seq) {
                continue;
            }
            if seq > indexed_through {
                // Not indexed yet: decoded here to know whom it is about, so it counts as
                // theirs, not as a mere mention.
                let capture = Capture::build(raw.clone(), &Decoding::new(inflate_limit));
                if capture.decoded.contact_key().as_deref() == Some(key) {
                    keyed.insert(seq);
                    continue;
                }
            }
            if address.mentioned_in(&raw, inflate_limit) {
                found.mentioning.push(seq);
            }
        }
        found.scanned_through = last;
    }
    found.keyed = keyed.into_iter().collect();
    Ok(())
}

/// Counts one more erasure in the transaction that makes it, in both files: the indexer
/// sees it in the derived file, and a start finds the two apart if a crash committed one
/// file's part alone.
pub fn count_erasure(tx: &Transaction) -> Result<()> {
    let next = (generation(tx)? + 1).to_string();
    settings::put_setting(tx, Setting::ErasureGeneration, &next)?;
    settings::put_setting(tx, Setting::DerivedErasureGeneration, &next)
}

/// How many erasures this store has seen.
pub fn generation(conn: &Connection) -> Result<i64> {
    settings::erasure_generation(conn, Setting::ErasureGeneration)
}

/// What erased deliveries touched, to be made again from what remains.
#[derive(Debug, Default)]
pub struct Affected {
    contacts: BTreeSet<String>,
    messages: BTreeSet<(String, String)>,
    /// Endpoint, body hash, and when the erased copy was received.
    bodies: BTreeSet<(String, Vec<u8>, i64)>,
    pub event_types: BTreeSet<String>,
    /// A full-text row could not be taken out by its text: derive everything again.
    pub derive_everything_again: bool,
}

/// What an erased delivery's event was part of.
struct Derived {
    contact_key: Option<String>,
    endpoint: String,
    message_id: Option<String>,
    body_hash: Option<Vec<u8>>,
    received_at: i64,
    event_type: Option<String>,
    search_hash: Option<i64>,
}

/// A delivery with the same body as others at its endpoint.
struct Copy {
    seq: i64,
    id: String,
    received_at: i64,
    repeat_of: Option<String>,
    contact_key: Option<String>,
}

/// Deletes these deliveries and everything derived from them (their events, full-text
/// rows, forwards and replays); returns what they touched.
pub fn remove(
    tx: &Transaction,
    seqs: &[i64],
    affected: &mut Affected,
    inflate_limit: usize,
) -> Result<()> {
    for &seq in seqs {
        let derived = tx
            .prepare_cached(
                "SELECT contact_key, endpoint_id, message_id, body_hash, event_type, search_hash,
                        received_at
                 FROM events WHERE seq = ?1",
            )?
            .query_row([seq], |r| {
                Ok(Derived {
                    contact_key: r.get(0)?,
                    endpoint: r.get(1)?,
                    message_id: r.get(2)?,
                    body_hash: r.get(3)?,
                    event_type: r.get(4)?,
                    search_hash: r.get(5)?,
                    received_at: r.get(6)?,
                })
            })
            .optional()?;
        if let Some(derived) = derived {
            unindex(tx, seq, derived.search_hash, affected, inflate_limit)?;
            affected.contacts.extend(derived.contact_key);
            if let Some(message) = derived.message_id {
                affected
                    .messages
                    .insert((derived.endpoint.clone(), message));
            }
            if let Some(hash) = derived.body_hash {
                affected
                    .bodies
                    .insert((derived.endpoint, hash, derived.received_at));
            }
            affected.event_types.extend(derived.event_type);
            let gone = tx
                .prepare_cached("DELETE FROM events WHERE seq = ?1")?
                .execute([seq])?;
            crate::store::events::count_events(tx, -(gone as i64))?;
        }
        tx.prepare_cached("DELETE FROM forwards WHERE event_seq = ?1")?
            .execute([seq])?;
        tx.prepare_cached("DELETE FROM replays WHERE event_seq = ?1")?
            .execute([seq])?;
        tx.prepare_cached("DELETE FROM deliveries WHERE seq = ?1")?
            .execute([seq])?;
    }
    Ok(())
}

/// Takes the event's tokens out of the full-text index, with its text made again from the
/// delivery. When that is not the text it was indexed with (it was indexed under another
/// body limit, or by a Hookscope that made it otherwise), its tokens cannot be found:
/// everything derived is then made again from the remaining deliveries ([`finish_erasure`]).
fn unindex(
    tx: &Transaction,
    seq: i64,
    indexed_hash: Option<i64>,
    affected: &mut Affected,
    inflate_limit: usize,
) -> Result<()> {
    if affected.derive_everything_again {
        return Ok(());
    }
    let text = deliveries::by_seq(tx, seq)?
        .map(|raw| Capture::build(raw, &Decoding::new(inflate_limit)).search_text);
    match text {
        Some(text) if Some(search_hash(&text)) == indexed_hash => unindex_text(tx, seq, &text),
        _ => {
            affected.derive_everything_again = true;
            Ok(())
        }
    }
}

/// After [`remove`]: what the erased deliveries touched made again as a reindex would,
/// or, when their tokens could not be taken out one by one, all derived state emptied
/// (full-text indexes included) for the indexer to derive again in the background.
pub fn finish_erasure(tx: &Transaction, affected: &mut Affected) -> Result<bool> {
    if affected.derive_everything_again {
        crate::store::indexer::reset_in(tx)?;
        return Ok(true);
    }
    repair(tx, affected)?;
    Ok(false)
}

/// Makes attempts, repeats, contacts and cards what a reindex of the remaining deliveries
/// would make them. Shapes are [`relearn`]ed apart: a prune does it once per run.
pub fn repair(tx: &Transaction, affected: &mut Affected) -> Result<()> {
    for (endpoint, message) in &affected.messages {
        let attempts: Vec<(i64, i64, Option<String>)> = tx
            .prepare_cached(
                "SELECT seq, attempt, contact_key FROM events
                 WHERE endpoint_id = ?1 AND message_id = ?2 ORDER BY received_at, id",
            )?
            .query_map((endpoint, message), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        for (n, (seq, attempt, key)) in attempts.into_iter().enumerate() {
            let now = n as i64 + 1;
            if attempt != now {
                tx.prepare_cached("UPDATE events SET attempt = ?2 WHERE seq = ?1")?
                    .execute((seq, now))?;
                affected.contacts.extend(key);
            }
        }
    }
    for (endpoint, hash, erased_at) in &affected.bodies {
        // Only a copy up to a window after the erased one could have taken it for its first.
        let until = erased_at + REPEAT_WINDOW_MICROS;
        let buckets = repeat_buckets(*erased_at, until);
        let copies: Vec<Copy> = tx
            .prepare_cached(COPIES_AFTER)?
            .query_map(
                (endpoint, hash, erased_at, until, buckets.0, buckets.1),
                |r| {
                    Ok(Copy {
                        seq: r.get(0)?,
                        id: r.get(1)?,
                        received_at: r.get(2)?,
                        repeat_of: r.get(3)?,
                        contact_key: r.get(4)?,
                    })
                },
            )?
            .collect::<rusqlite::Result<_>>()?;
        for copy in copies {
            let first = first_identical(tx, endpoint, hash, &copy.id, copy.received_at)?;
            if first != copy.repeat_of {
                tx.prepare_cached("UPDATE events SET repeat_of = ?2 WHERE seq = ?1")?
                    .execute((copy.seq, &first))?;
                affected.contacts.extend(copy.contact_key);
            }
        }
    }
    let mut text = HeldText::default();
    for key in &affected.contacts {
        contacts::rebuild(tx, key, &mut text)?;
        // Rebuilt from the events when next read.
        cards::drop_stale(tx, key)?;
    }
    text.write(tx)
}

/// Learns the shapes of these event types again from the events that remain.
pub fn relearn(
    tx: &Transaction,
    event_types: &BTreeSet<String>,
    inflate_limit: usize,
) -> Result<()> {
    let paths_of = |seq: i64| -> Result<Option<Paths>> {
        let raw: Option<crate::capture::RawDelivery> = tx
            .prepare_cached("SELECT id FROM deliveries WHERE seq = ?1")?
            .query_row([seq], |r| r.get::<_, String>(0))
            .optional()?
            .and_then(|id| deliveries::get(tx, &id).ok().flatten().map(|(_, raw)| raw));
        Ok(raw.and_then(|raw| Capture::build(raw, &Decoding::new(inflate_limit)).paths))
    };
    for event_type in event_types {
        shapes::rederive(tx, event_type, &paths_of)?;
    }
    Ok(())
}

/// Forgets a person found by [`find`]: in one transaction, so a crash leaves all of it or
/// none of it. The scrub that follows is recorded as pending in the same transaction.
pub fn forget(
    conn: &mut Connection,
    erasure: &Erasure,
    inflate_limit: usize,
) -> Result<ErasureReport> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // Deliveries acknowledged since the preview: no other writer can add one now.
    let mut erasure = erasure.clone();
    let address = Address::parse(&erasure.email).map_err(Error::Invalid)?;
    scan(&tx, &mut erasure, &address, inflate_limit)?;
    let mut affected = Affected::default();
    remove(&tx, &erasure.keyed, &mut affected, inflate_limit)?;
    remove(&tx, &erasure.mentioning, &mut affected, inflate_limit)?;
    affected.contacts.insert(erasure.email.clone());
    if !finish_erasure(&tx, &mut affected)? {
        relearn(&tx, &affected.event_types, inflate_limit)?;
    }
    settings::put_setting(&tx, Setting::ErasureScrubPending, "1")?;
    count_erasure(&tx)?;
    tx.commit()?;
    Ok(ErasureReport {
        email: erasure.email.clone(),
        deliveries: erasure.keyed.len() as u64,
        mentioning: erasure.mentioning.len() as u64,
    })
}

/// Leaves no erased byte readable in the files: each file's log, which still holds the
/// pages as they were before the erasure, is checkpointed into its database (where
/// `secure_delete` overwrote freed content, and the full-text indexes' own secure-delete
/// dropped the tokens) and truncated. Until both are, the scrub stays pending (and a
/// start finishes it): the flag is cleared last, so a scrub killed at any point is done
/// again. The frame clearing it holds only the settings, written after the erasure.
pub fn scrub(conn: &Connection) -> Result<()> {
    // Every file the connection holds: the deliveries' and, attached, the derived one.
    let schemas: Vec<String> = conn
        .prepare("SELECT name FROM pragma_database_list")?
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for schema in &schemas {
        truncate_log(conn, schema)?;
    }
    settings::delete_setting(conn, Setting::ErasureScrubPending)?;
    Ok(())
}

/// How long a scrub tries to truncate a log that another checkpoint holds.
const TRUNCATE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// Checkpoints `schema`'s log into its database and truncates it. A checkpoint running on
/// another connection (the background one, every few milliseconds under a flood) makes
/// SQLite give up at once, without waiting: so it is tried again until done.
fn truncate_log(conn: &Connection, schema: &str) -> Result<()> {
    let started = std::time::Instant::now();
    loop {
        let done = wal_checkpoint(conn, schema, Mode::Truncate)?;
        if !done.busy && done.frames <= 0 {
            return Ok(());
        }
        if started.elapsed() > TRUNCATE_PATIENCE {
            return Err(Error::Sqlite(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                Some(format!(
                    "the {schema} log could not be truncated after an erasure (busy for {} s); it is tried again at the next start",
                    TRUNCATE_PATIENCE.as_secs()
                )),
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Whether a scrub was left pending (a crash after an erasure committed).
pub fn scrub_pending(conn: &Connection) -> Result<bool> {
    Ok(settings::get_setting(conn, Setting::ErasureScrubPending)?.is_some())
}
