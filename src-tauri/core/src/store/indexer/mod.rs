//! The indexer: follows the stored deliveries in order and derives everything else from
//! them (the event rows, full text, contacts and their search rows, cards, shapes and
//! drift, attempts and repeats) in large batches, its position (`index.through`) written in
//! the same transaction as what it derived. It never holds up an acknowledgement: it
//! reads and decodes on a thread of its own at a lower priority, and the writer applies
//! what it derived between acknowledging transactions. After a crash it goes on from its
//! position; [`reset`] makes it derive everything again (`hookscope reindex`).

pub mod derive;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, Transaction};
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::capture::{Capture, Decoding};
use crate::error::Result;
use crate::store::events::EventMeta;
use crate::store::shapes::ShapeLearner;
use crate::store::writer::Writer;
use crate::store::{db, deliveries, endpoints, forwards, settings};

/// The last delivery whose derived state is stored (settings key).
pub const POSITION: &str = "index.through";
/// Deliveries read and decoded in one batch, and how many body bytes at most.
const BATCH_ROWS: usize = 2_000;
const BATCH_BYTES: usize = 16 * 1024 * 1024;

/// How often an idle indexer looks for deliveries stored by another process.
const LOOK_AGAIN: std::time::Duration = std::time::Duration::from_millis(250);
/// How long it waits after a failure (a full disk) before trying again.
const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// How far the indexer has come: the last delivery indexed, and how many wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct IndexProgress {
    pub through: i64,
    pub behind: i64,
}

/// Deliveries read and decoded, ready for the writer to derive from.
pub struct IndexBatch {
    /// The position it was read from: applied only if the store's is still that (an
    /// erasure that had to derive everything again set it back meanwhile).
    pub after: i64,
    pub deliveries: Vec<(i64, Capture)>,
    /// The last seq read: the new position once applied.
    pub through: i64,
}

impl IndexBatch {
    /// Splits the batch after its first `at` deliveries: this keeps those, the batch
    /// returned holds the rest, to be applied after them.
    pub fn split_off(&mut self, at: usize) -> IndexBatch {
        let rest = self.deliveries.split_off(at);
        let middle = self.deliveries.last().map_or(self.after, |(seq, _)| *seq);
        let later = IndexBatch {
            after: middle,
            deliveries: rest,
            through: self.through,
        };
        self.through = middle;
        later
    }
}

/// The last delivery indexed (0: none).
pub fn position(conn: &Connection) -> Result<i64> {
    Ok(settings::get_setting(conn, POSITION)?
        .and_then(|text| text.parse().ok())
        .unwrap_or(0))
}

/// The deliveries after `through`, decoded, or `None` when there are none. Signatures are
/// checked with the endpoints' secrets as they are now.
pub fn read(conn: &Connection, through: i64, inflate_limit: usize) -> Result<Option<IndexBatch>> {
    let rows = deliveries::after(conn, through, BATCH_ROWS, BATCH_BYTES)?;
    let Some(&(last, _)) = rows.last() else {
        return Ok(None);
    };
    let secrets: HashMap<String, String> = endpoints::list(conn)?
        .into_iter()
        .filter_map(|e| Some((e.id, e.secret?)))
        .collect();
    let decoding = Decoding::new(inflate_limit);
    let deliveries = rows
        .into_iter()
        .map(|(seq, raw)| {
            let secret = secrets.get(&raw.endpoint_id).cloned();
            let mut capture = Capture::build(raw, &decoding);
            capture.check_signature(secret.as_deref());
            (seq, capture)
        })
        .collect();
    Ok(Some(IndexBatch {
        after: through,
        deliveries,
        through: last,
    }))
}

/// Derives from a batch in one transaction with its new position; returns the position
/// and the events as they now are, for live viewers. A batch read from a position the
/// store no longer has is dropped: the position returned is where to read from instead.
pub fn apply(
    conn: &mut Connection,
    shapes: &mut ShapeLearner,
    batch: IndexBatch,
) -> Result<(i64, Vec<Arc<EventMeta>>)> {
    let mut metas = Vec::with_capacity(batch.deliveries.len());
    let mut moved = None;
    derive::in_transaction(conn, shapes, |tx, shapes| {
        let stored = position(tx)?;
        if stored != batch.after {
            moved = Some(stored);
            return Ok(());
        }
        let mut newest = Newest::default();
        for (seq, capture) in &batch.deliveries {
            // Erased (forgotten, pruned) since it was read.
            if !deliveries::exists(tx, *seq)? {
                continue;
            }
            let older = newest.is_after(tx, capture)?;
            let stored = derive::derive(tx, shapes, *seq, capture)?;
            if older {
                derive::settle_later_events(tx, capture, &stored)?;
            }
            let mut meta = EventMeta::from_capture(capture);
            meta.message_id = stored.message_id;
            meta.attempt = stored.attempt;
            meta.repeat_of = stored.repeat_of;
            meta.drift = stored
                .drift
                .and_then(|d| serde_json::value::RawValue::from_string(d).ok());
            meta.forward = forwards::view(tx, *seq)?;
            metas.push(Arc::new(meta));
        }
        settings::put_setting(tx, POSITION, &batch.through.to_string())
    })?;
    Ok((moved.unwrap_or(batch.through), metas))
}

/// The newest event indexed on each endpoint, by (received_at, id): a delivery older than
/// it arrived out of order (an import), and the events after it are settled.
#[derive(Default)]
struct Newest(HashMap<String, (i64, String)>);

impl Newest {
    fn is_after(&mut self, tx: &Transaction, capture: &Capture) -> Result<bool> {
        let raw = &capture.raw;
        let key = (raw.received_at, raw.id.clone());
        let newest = match self.0.get(&raw.endpoint_id) {
            Some(newest) => Some(newest.clone()),
            None => tx
                .prepare_cached(
                    "SELECT received_at, id FROM events WHERE endpoint_id = ?1
                     ORDER BY received_at DESC, id DESC LIMIT 1",
                )?
                .query_row([&raw.endpoint_id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?,
        };
        let older = newest.as_ref().is_some_and(|newest| &key < newest);
        if !older {
            self.0.insert(raw.endpoint_id.clone(), key);
        }
        Ok(older)
    }
}

/// Derives everything not derived yet, on this connection (the command line's import
/// and reindex; no server runs on the store). Calls `progress(done, left)` per batch;
/// returns how many deliveries were indexed.
pub fn run_to_end(
    conn: &mut Connection,
    inflate_limit: usize,
    mut progress: impl FnMut(u64, i64),
) -> Result<u64> {
    let mut shapes = ShapeLearner::default();
    let mut done = 0;
    let mut through = position(conn)?;
    // Counted once: counting what is left after each batch read the rest of the table
    // each time (quadratic; a million-delivery reindex spent most of its time there).
    let total = deliveries::count_after(conn, through)?;
    while let Some(batch) = read(conn, through, inflate_limit)? {
        done += batch.deliveries.len() as u64;
        through = apply(conn, &mut shapes, batch)?.0;
        progress(done, (total - done as i64).max(0));
    }
    Ok(done)
}

/// Empties every derived table and sets the position back: the indexer derives all of it
/// again from the deliveries.
pub fn reset(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction()?;
    reset_in(&tx)?;
    tx.commit()?;
    Ok(())
}

/// [`reset`] inside a transaction of the caller's.
pub fn reset_in(tx: &Transaction) -> Result<()> {
    tx.execute_batch(
        "DELETE FROM events;
         INSERT INTO events_fts (events_fts) VALUES ('delete-all');
         INSERT INTO contacts_search (contacts_search) VALUES ('delete-all');
         DELETE FROM contacts;
         DELETE FROM contact_cards;
         DELETE FROM event_shapes;",
    )?;
    settings::delete_setting(tx, POSITION)?;
    Ok(())
}

/// What the indexer thread of a running server works with.
pub struct IndexerHandle {
    pub database: PathBuf,
    pub writer: Arc<Writer>,
    pub inflate_limit: usize,
    pub shutdown: CancellationToken,
    /// To wait for new deliveries from a thread that is not the runtime's.
    pub runtime: tokio::runtime::Handle,
}

/// Starts the indexer thread of a running server: it catches up, then follows each commit.
pub fn start(handle: IndexerHandle) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("hookscope-indexer".into())
        .spawn(move || {
            lower_priority();
            if let Err(error) = follow(&handle)
                && !handle.shutdown.is_cancelled()
            {
                tracing::error!(%error, "the indexer stopped");
            }
        })
        .expect("the indexer thread starts")
}

/// Why the indexer stopped waiting.
enum Wake {
    Committed,
    Idle,
    Stopping,
}

fn follow(handle: &IndexerHandle) -> Result<()> {
    let conn = db::open_reader(&handle.database)?;
    let mut committed: watch::Receiver<i64> = handle.writer.watch_committed();
    let mut through = handle.writer.watch_indexed().borrow().through;
    // Said once per spell of failures (a full disk), not at every try.
    let mut failing = false;
    loop {
        if handle.shutdown.is_cancelled() {
            return Ok(());
        }
        let step = read(&conn, through, handle.inflate_limit).and_then(|batch| match batch {
            Some(batch) => {
                through = handle.writer.apply_index(batch)?;
                Ok(true)
            }
            None => {
                // An erasure may have set the position back to derive everything again.
                through = position(&conn)?;
                Ok(false)
            }
        });
        let wait = match step {
            Ok(true) => {
                if std::mem::take(&mut failing) {
                    tracing::info!("indexing again");
                }
                continue;
            }
            Ok(false) => LOOK_AGAIN,
            Err(crate::error::Error::ShuttingDown) => return Ok(()),
            Err(error) => {
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!(%error, "indexing failed; trying again every second");
                }
                // What was applied is the truth: go on from the stored position.
                through = position(&conn)?;
                RETRY_AFTER
            }
        };
        // Nothing new (or a failure): wait for the next commit, or look again in a
        // moment for deliveries another process stored (`hookscope import`).
        let shutdown = handle.shutdown.clone();
        let woken = handle.runtime.block_on(async {
            tokio::select! {
                changed = committed.changed(), if !failing => match changed {
                    Ok(()) => Wake::Committed,
                    Err(_) => Wake::Stopping,
                },
                () = tokio::time::sleep(wait) => Wake::Idle,
                () = shutdown.cancelled() => Wake::Stopping,
            }
        });
        match woken {
            Wake::Stopping => return Ok(()),
            // Quiet for a while: a good moment to see whether `hookscope forget` erased
            // something (while deliveries arrive, applying a batch looks anyway).
            Wake::Idle if !failing => handle.writer.look_for_erasures()?,
            Wake::Idle | Wake::Committed => {}
        }
    }
}

/// Under load the indexer yields to acknowledging deliveries: the system schedules its
/// thread after the listener's and the writer's.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: sets this thread's own nice value; no memory is touched.
    unsafe {
        let thread = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, thread, 10);
    }
}
