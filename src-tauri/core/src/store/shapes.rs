//! Learned shapes in the store (`event_shapes`), and the learner that keeps them current
//! as deliveries are derived. The learner is a value its owner (the writer) passes where
//! shapes are learned: a delivery costs no JSON parse of its type's shape, and each shape
//! is written once per transaction ([`ShapeLearner::flush`]), not once per delivery.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, Transaction};

use crate::capture::shape::{Change, Learned, Paths};
use crate::error::Result;

/// Event types the learner keeps in memory; the cache starts over beyond it.
const MAX_CACHED_TYPES: usize = 256;

/// The writer's working copy of a type's shape.
struct Cached {
    learned: Learned,
    /// Deliveries the stored row counted when this copy was loaded or last flushed.
    stored: i64,
    /// Checked against the stored row in this transaction.
    checked: bool,
    /// Learned from since the last flush.
    dirty: bool,
}

/// Shapes as one store's writer maintains them. Checked against the stored delivery count
/// once per transaction, so another writer (an import in another process) makes it
/// reload; a transaction that fails must [`ShapeLearner::forget`] what it learned.
#[derive(Default)]
pub struct ShapeLearner {
    cache: HashMap<String, Cached>,
    /// The store's erasure count when the cache was filled ([`ShapeLearner::follow_erasures`]).
    erasures: Option<i64>,
    /// While events stored before shapes existed are being learned from, a shape is still
    /// incomplete: live deliveries teach it but are not flagged.
    learning_history: bool,
}

impl ShapeLearner {
    pub fn set_learning_history(&mut self, learning: bool) {
        self.learning_history = learning;
    }

    /// Compares a delivery of `event_type` with its type's shape and learns from it;
    /// returns the drift (empty when none). The shape is stored by [`ShapeLearner::flush`]
    /// before the commit. `variant` is the paths' [`crate::capture::shape::fingerprint`].
    pub fn record(
        &mut self,
        tx: &Transaction,
        event_type: &str,
        paths: &Paths,
        variant: u64,
    ) -> Result<Vec<Change>> {
        let cached = self.cache.remove(event_type);
        let mut entry = match cached {
            Some(entry) if entry.checked => entry,
            cached => {
                let stored: Option<i64> = tx
                    .prepare_cached("SELECT deliveries FROM event_shapes WHERE event_type = ?1")?
                    .query_row([event_type], |r| r.get(0))
                    .optional()?;
                match cached {
                    Some(entry) if entry.stored == stored.unwrap_or(0) => Cached {
                        checked: true,
                        ..entry
                    },
                    _ => {
                        let learned = match stored {
                            Some(_) => load(tx, event_type)?.unwrap_or_default(),
                            None => Learned::default(),
                        };
                        Cached {
                            stored: learned.deliveries(),
                            learned,
                            checked: true,
                            dirty: false,
                        }
                    }
                }
            }
        };
        let changes = entry
            .learned
            .record_variant(paths, variant, self.learning_history);
        entry.dirty = true;
        if self.cache.len() >= MAX_CACHED_TYPES && !self.cache.contains_key(event_type) {
            // Written-out entries can go; unwritten ones must stay until the flush.
            self.cache.retain(|_, e| e.dirty);
        }
        self.cache.insert(event_type.to_string(), entry);
        Ok(changes)
    }

    /// Stores every shape learned from in this transaction; call it just before committing.
    pub fn flush(&mut self, tx: &Transaction) -> Result<()> {
        for (event_type, entry) in self.cache.iter_mut() {
            if entry.dirty {
                let deliveries = entry.learned.deliveries();
                tx.prepare_cached(
                    "INSERT INTO event_shapes (event_type, deliveries, shape) VALUES (?1, ?2, ?3)
                     ON CONFLICT (event_type) DO UPDATE SET deliveries = excluded.deliveries,
                        shape = excluded.shape",
                )?
                .execute((
                    event_type,
                    deliveries,
                    serde_json::to_string(&entry.learned).expect("a shape serialises"),
                ))?;
                entry.stored = deliveries;
                entry.dirty = false;
            }
            entry.checked = false;
        }
        Ok(())
    }

    /// Forgets the cached shapes: a transaction that learned from them failed.
    pub fn forget(&mut self) {
        self.cache.clear();
    }

    /// Forgets what it learned when the store's erasure count is no longer the one it
    /// learned under: an erasure learned the shapes it touched again, on another thread.
    pub fn follow_erasures(&mut self, generation: i64) {
        if self.erasures.replace(generation) != Some(generation) {
            self.forget();
        }
    }
}

pub fn load(conn: &rusqlite::Connection, event_type: &str) -> Result<Option<Learned>> {
    let stored: Option<String> = conn
        .prepare_cached("SELECT shape FROM event_shapes WHERE event_type = ?1")?
        .query_row([event_type], |r| r.get(0))
        .optional()?;
    Ok(stored.map(|text| {
        let mut learned: Learned = serde_json::from_str(&text).unwrap_or_default();
        learned.reindex();
        learned
    }))
}

/// Every learned type with its delivery count, most delivered first.
pub fn list(conn: &rusqlite::Connection) -> Result<Vec<(String, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT event_type, deliveries FROM event_shapes ORDER BY deliveries DESC, event_type",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Learns the shape of `event_type` again from its events in the order they were indexed
/// (each keeps its variant's fingerprint, so no body is decoded unless its variant is not
/// among those the shape kept: `paths_of` gives those), and sets each event's drift to
/// what it is against the events before it. After deliveries were erased or pruned, the
/// shape and the drift are then what a reindex would make of the deliveries that remain.
pub fn rederive(
    tx: &Transaction,
    event_type: &str,
    paths_of: &dyn Fn(i64) -> Result<Option<Paths>>,
) -> Result<()> {
    let before = load(tx, event_type)?.unwrap_or_default();
    let events: Vec<(i64, i64, Option<String>)> = tx
        .prepare_cached(
            "SELECT seq, variant, drift FROM events
             WHERE event_type = ?1 AND variant IS NOT NULL ORDER BY seq",
        )?
        .query_map([event_type], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut learned = Learned::default();
    for (seq, variant, drift) in events {
        let paths = match before.variant_paths(variant as u64) {
            Some(paths) => paths.clone(),
            None => match paths_of(seq)? {
                Some(paths) => paths,
                None => continue,
            },
        };
        let changes = learned.record(&paths, false);
        let now = (!changes.is_empty())
            .then(|| serde_json::to_string(&changes).expect("changes serialise"));
        if now != drift {
            tx.prepare_cached("UPDATE events SET drift = ?2 WHERE seq = ?1")?
                .execute((seq, now))?;
        }
    }
    if learned.deliveries() == 0 {
        tx.prepare_cached("DELETE FROM event_shapes WHERE event_type = ?1")?
            .execute([event_type])?;
    } else {
        tx.prepare_cached(
            "INSERT INTO event_shapes (event_type, deliveries, shape) VALUES (?1, ?2, ?3)
             ON CONFLICT (event_type) DO UPDATE SET deliveries = excluded.deliveries,
                shape = excluded.shape",
        )?
        .execute((
            event_type,
            learned.deliveries(),
            serde_json::to_string(&learned).expect("a shape serialises"),
        ))?;
    }
    Ok(())
}
