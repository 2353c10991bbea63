//! The one thread that writes. Deliveries queue up while a commit is in flight and go
//! into the next transaction together (group commit): each is acknowledged only after the
//! transaction holding it committed, and only then published to live viewers.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::capture::Capture;
use crate::capture::decode;
use crate::capture::signature::Verdict;
use crate::error::{Error, Result};
use crate::exchange::event_json::EventMeta;
use crate::timefmt;

/// Most deliveries in one transaction; bounds the latency a batch adds to its last member.
const MAX_BATCH: usize = 512;
/// Deliveries waiting for the writer before senders wait for room (backpressure).
const QUEUE_DEPTH: usize = 4096;

type Task = Box<dyn FnOnce(&mut Connection) + Send>;

/// A delivery waiting for its commit, and the sender waiting for its answer.
struct Pending {
    capture: Box<Capture>,
    /// Completed with what only the store can tell (attempt, repeat) when inserted.
    meta: Box<EventMeta>,
    done: oneshot::Sender<Result<Arc<EventMeta>>>,
}

enum Job {
    Capture(Pending),
    Task(Task),
    Stop,
}

/// Deliveries the store could not take since the last one it could. Senders only see a
/// 503, so the user is told: a full disk otherwise goes unnoticed until data is missing.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoreTrouble {
    /// When the first of them was refused.
    pub since: String,
    pub refused: u64,
    /// `disk_full` or `storage`: what the user can do differs.
    pub code: &'static str,
    /// The last error.
    pub message: String,
}

/// `None` while deliveries are stored; set by a refused delivery, cleared by the next commit.
type Health = watch::Sender<Option<StoreTrouble>>;

/// Handle to the writer thread. Cheap to share behind an `Arc`.
pub struct Writer {
    jobs: mpsc::Sender<Job>,
    health: Arc<Health>,
    thread: Mutex<Option<JoinHandle<()>>>,
    checkpointer: Mutex<Option<Checkpointer>>,
}

impl Writer {
    /// Starts the writer on `conn`; committed events are announced on `published`.
    /// `checkpoints` is a second read-write connection to the same database: WAL
    /// checkpoints run on it, on their own thread, so copying the log into the database
    /// never stalls a commit.
    pub fn start(
        conn: Connection,
        checkpoints: Connection,
        published: broadcast::Sender<Arc<EventMeta>>,
    ) -> Result<Writer> {
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let (jobs, queue) = mpsc::channel(QUEUE_DEPTH);
        let health = Arc::new(watch::Sender::new(None));
        let thread_health = health.clone();
        let thread = std::thread::Builder::new()
            .name("hookscope-writer".into())
            .spawn(move || run(conn, queue, published, &thread_health))
            .expect("the writer thread starts");
        Ok(Writer {
            jobs,
            health,
            thread: Mutex::new(Some(thread)),
            checkpointer: Mutex::new(Some(Checkpointer::start(checkpoints))),
        })
    }

    /// Whether deliveries are being refused right now, and since when.
    pub fn trouble(&self) -> Option<StoreTrouble> {
        self.health.borrow().clone()
    }

    /// Every change of [`Writer::trouble`].
    pub fn watch_trouble(&self) -> watch::Receiver<Option<StoreTrouble>> {
        self.health.subscribe()
    }

    /// Stores one delivery; returns once it is committed.
    pub async fn capture(&self, capture: Capture) -> Result<Arc<EventMeta>> {
        let meta = Box::new(EventMeta::from_capture(&capture));
        let (done, committed) = oneshot::channel();
        self.jobs
            .send(Job::Capture(Pending {
                capture: Box::new(capture),
                meta,
                done,
            }))
            .await
            .map_err(|_| Error::ShuttingDown)?;
        committed.await.map_err(|_| Error::ShuttingDown)?
    }

    /// Runs a write on the writer's connection, in queue order with deliveries.
    pub async fn run<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let (done, finished) = oneshot::channel();
        let task: Task = Box::new(move |conn| {
            let _ = done.send(work(conn));
        });
        self.jobs
            .send(Job::Task(task))
            .await
            .map_err(|_| Error::ShuttingDown)?;
        finished.await.map_err(|_| Error::ShuttingDown)?
    }

    /// Commits what is queued, then stops the thread. Blocking: call it off the runtime.
    pub fn stop(&self) {
        let _ = self.jobs.blocking_send(Job::Stop);
        if let Some(thread) = self.thread.lock().expect("writer handle lock").take() {
            let _ = thread.join();
        }
        if let Some(checkpointer) = self.checkpointer.lock().expect("checkpointer lock").take() {
            checkpointer.stop();
        }
    }
}

/// How often the log is copied into the database. Between checkpoints the WAL grows by
/// what was written meanwhile; readers see everything either way.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

struct Checkpointer {
    stop: std::sync::mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Checkpointer {
    fn start(conn: Connection) -> Checkpointer {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("hookscope-checkpoint".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(CHECKPOINT_EVERY)
                {
                    // PASSIVE never waits for the writer or readers; what it cannot copy
                    // now is copied next time.
                    if let Err(error) =
                        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::warn!(%error, "WAL checkpoint failed");
                    }
                }
                let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
            })
            .expect("the checkpoint thread starts");
        Checkpointer { stop, thread }
    }

    fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

fn run(
    mut conn: Connection,
    mut queue: mpsc::Receiver<Job>,
    published: broadcast::Sender<Arc<EventMeta>>,
    health: &Health,
) {
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    let mut stopping = false;
    while !stopping {
        let Some(first) = queue.blocking_recv() else {
            break;
        };
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Capture(pending) => batch.push(pending),
                Job::Task(task) => {
                    commit(&mut conn, &mut batch, &published, health);
                    task(&mut conn);
                }
                Job::Stop => stopping = true,
            }
            if batch.len() < MAX_BATCH {
                next = queue.try_recv().ok();
            }
        }
        commit(&mut conn, &mut batch, &published, health);
    }
    // Whatever is still queued was never acknowledged: dropping it tells its senders.
    queue.close();
}

/// Commits the batch in one transaction, then acknowledges and publishes each delivery.
/// If the batch fails, each delivery is tried alone so one bad row cannot sink the others.
fn commit(
    conn: &mut Connection,
    batch: &mut Vec<Pending>,
    published: &broadcast::Sender<Arc<EventMeta>>,
    health: &Health,
) {
    if batch.is_empty() {
        return;
    }
    let together = in_transaction(conn, |tx| {
        batch.iter_mut().try_for_each(|pending| store(tx, pending))
    });
    match together {
        Ok(()) => {
            health.send_if_modified(|trouble| trouble.take().is_some());
            for pending in batch.drain(..) {
                let meta = Arc::new(*pending.meta);
                let _ = pending.done.send(Ok(meta.clone()));
                let _ = published.send(meta);
            }
        }
        Err(error) => {
            tracing::warn!(%error, size = batch.len(), "batch commit failed; retrying one by one");
            for mut pending in batch.drain(..) {
                match in_transaction(conn, |tx| store(tx, &mut pending)) {
                    Ok(()) => {
                        health.send_if_modified(|trouble| trouble.take().is_some());
                        let meta = Arc::new(*pending.meta);
                        let _ = pending.done.send(Ok(meta.clone()));
                        let _ = published.send(meta);
                    }
                    Err(error) => {
                        refused(health, &error);
                        let _ = pending.done.send(Err(error));
                    }
                }
            }
        }
    }
}

/// Counts a delivery the store could not take.
fn refused(health: &Health, error: &Error) {
    health.send_modify(|trouble| {
        let trouble = trouble.get_or_insert_with(|| StoreTrouble {
            since: timefmt::format_micros(timefmt::now_micros()),
            refused: 0,
            code: "storage",
            message: String::new(),
        });
        trouble.refused += 1;
        trouble.code = if error.code() == "disk_full" {
            "disk_full"
        } else {
            "storage"
        };
        trouble.message = error.to_string();
    });
}

fn store(tx: &Transaction, pending: &mut Pending) -> Result<()> {
    if let Some(stored) = insert_capture(tx, &pending.capture)? {
        pending.meta.message_id = stored.message_id;
        pending.meta.attempt = stored.attempt;
        pending.meta.repeat_of = stored.repeat_of;
        pending.meta.drift = stored
            .drift
            .and_then(|d| serde_json::value::RawValue::from_string(d).ok());
    }
    Ok(())
}

/// Runs `work` in one transaction with the deliveries' shapes stored at its end.
pub fn in_transaction(
    conn: &mut Connection,
    work: impl FnOnce(&Transaction) -> Result<()>,
) -> Result<()> {
    let done = (|| {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        work(&tx)?;
        crate::store::shapes::flush(&tx)?;
        tx.commit()?;
        Ok(())
    })();
    if done.is_err() {
        crate::store::shapes::forget_cached();
    }
    done
}

/// What the store learned while inserting a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub message_id: Option<String>,
    /// 1 for the first delivery of a message (and for deliveries without a message id).
    pub attempt: i64,
    /// The first identical unsigned delivery shortly before, if any.
    pub repeat_of: Option<String>,
    /// How the payload differed from its type's shape (JSON list), if it did.
    pub drift: Option<String>,
    /// SHA-256 of an unsigned body, by which repeats are found.
    pub body_hash: Option<Vec<u8>>,
}

/// Inserts one event, its full-text entry, its contact's running totals and card, and
/// learns its type's shape (stored when the transaction ends: use [`in_transaction`]).
/// Returns
/// `None` when an event with the same id is already stored (an import seen before).
pub fn insert_capture(tx: &Transaction, capture: &Capture) -> Result<Option<Stored>> {
    let raw = &capture.raw;
    let decoded = &capture.decoded;
    let contact_key = decoded.contact_key();
    let (message_id, attempt) = attempt_of(tx, capture)?;
    let (body_hash, repeat_of) = repeat_of(tx, capture)?;
    // Only what is stored for the first time teaches the shape: an import seen before
    // must not count twice, so the shape is learned after the insert succeeded. The drift
    // column is filled in then.
    let fact_json = capture
        .fact
        .as_ref()
        .map(|f| serde_json::to_string(f).expect("a fact serialises"));
    let inserted = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO events (id, received_at, endpoint_id, endpoint_name, method,
                path, query, headers, remote_addr, content_type, content_encoding, size, body,
                body_kind, source, family, event_type, label, summary, contact_key,
                contact_email, contact_id, contact_name, occurred_at, client_ip, via_tunnel, signature,
                message_id, attempt, body_hash, repeat_of, facts)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32)",
        )?
        .execute(rusqlite::params![
            raw.id,
            raw.received_at,
            raw.endpoint_id,
            raw.endpoint_name,
            raw.method,
            raw.path,
            raw.query,
            capture.headers_json,
            raw.remote_addr,
            capture.content_type,
            capture.content_encoding,
            raw.body.len() as i64,
            &raw.body[..],
            capture.body_kind.as_str(),
            decoded.source.as_str(),
            decoded.family.as_str(),
            decoded.event_type,
            decoded.label,
            decoded.summary,
            contact_key,
            decoded.contact_email,
            decoded.contact_id,
            decoded.contact_name,
            decoded.occurred_at,
            raw.client_ip,
            raw.via_tunnel,
            capture.signature.as_str(),
            message_id,
            attempt,
            body_hash,
            repeat_of,
            fact_json,
        ])?;

    if inserted == 0 {
        return Ok(None);
    }
    let seq = tx.last_insert_rowid();
    if let Some(target) = &capture.forward_to {
        // In the same transaction: an acknowledged delivery is never lost to its forward.
        let (state, error) = if capture.forward_looped {
            ("failed", Some(crate::delivery::forward::LOOP_REFUSED))
        } else {
            ("pending", None)
        };
        tx.prepare_cached(
            "INSERT INTO forwards (event_seq, target, state, next_at, updated_at, error)
             VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
        )?
        .execute((seq, target, state, raw.received_at, error))?;
    }
    let drift = match (&decoded.event_type, &capture.paths) {
        (Some(event_type), Some(paths)) => {
            let changes = crate::store::shapes::record(tx, event_type, paths)?;
            if changes.is_empty() {
                None
            } else {
                let drift = serde_json::to_string(&changes).expect("changes serialise");
                tx.prepare_cached("UPDATE events SET drift = ?2 WHERE seq = ?1")?
                    .execute((seq, &drift))?;
                Some(drift)
            }
        }
        _ => None,
    };
    // A retry or a probable repeat tells the card nothing new.
    if let (Some(key), Some(fact), 1, None) = (&contact_key, &capture.fact, attempt, &repeat_of) {
        crate::store::cards::record(tx, key, fact, raw.received_at, seq)?;
    }
    tx.prepare_cached("INSERT INTO events_fts (rowid, text) VALUES (?1, ?2)")?
        .execute((seq, &capture.search_text))?;
    if let Some(key) = contact_key {
        // Imports can bring older events: the newest event decides the "last" columns.
        tx.prepare_cached(
            "INSERT INTO contacts (key, name, contact_id, events, first_seen, last_seen,
                    last_event_id, last_event_type, last_label, last_summary)
                 VALUES (?1, ?2, ?3, ?9, ?4, ?4, ?5, ?6, ?7, ?8)
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
            decoded.contact_name,
            decoded.contact_id,
            raw.received_at,
            raw.id,
            decoded.event_type,
            decoded.label,
            decoded.summary,
            // A retry of a message is one more attempt, not one more event.
            i64::from(attempt == 1),
        ])?;
        // A separate lookup, not RETURNING: with RETURNING the upsert cost about as much
        // again as the whole rest of the insert (93 vs 48 µs CPU per row, `make bench`).
        let (contact, name, indexed): (i64, Option<String>, Option<String>) = tx
            .prepare_cached("SELECT id, name, search_text FROM contacts WHERE key = ?1")?
            .query_row([&key], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
        // The search index changes only when a contact appears or is renamed.
        let text = format!("{key} {}", name.unwrap_or_default());
        if indexed.as_deref() != Some(text.as_str()) {
            if indexed.is_some() {
                tx.prepare_cached("DELETE FROM contacts_search WHERE rowid = ?1")?
                    .execute([contact])?;
            }
            tx.prepare_cached("INSERT INTO contacts_search (rowid, text) VALUES (?1, ?2)")?
                .execute((contact, &text))?;
            tx.prepare_cached("UPDATE contacts SET search_text = ?2 WHERE id = ?1")?
                .execute((contact, &text))?;
        }
    }
    Ok(Some(Stored {
        message_id,
        attempt,
        repeat_of,
        drift,
        body_hash,
    }))
}

/// Imports arrive in any order (exports joined together, another tool's list). An event
/// stored before the earlier deliveries of its message, or before an earlier copy of its
/// body, was taken for the first. Once `stored` (the earlier one) is in, those later events are renumbered as
/// retries or marked as repeats; their contact counts the message once, and its card is
/// dropped, to be rebuilt from the events when next read.
pub fn settle_later_events(tx: &Transaction, capture: &Capture, stored: &Stored) -> Result<()> {
    let raw = &capture.raw;
    let mut stale_cards: Vec<String> = Vec::new();
    if let Some(message_id) = &stored.message_id {
        let later: Vec<(i64, i64, Option<String>, bool)> = tx
            .prepare_cached(
                "SELECT seq, attempt, contact_key, repeat_of IS NULL FROM events
                 WHERE endpoint_id = ?1 AND message_id = ?2 AND id <> ?3
                   AND (received_at > ?4 OR (received_at = ?4 AND id > ?3))",
            )?
            .query_map(
                (&raw.endpoint_id, message_id, &raw.id, raw.received_at),
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?
            .collect::<rusqlite::Result<_>>()?;
        for (seq, attempt, contact_key, not_a_repeat) in later {
            tx.prepare_cached("UPDATE events SET attempt = attempt + 1 WHERE seq = ?1")?
                .execute([seq])?;
            if let (1, Some(key)) = (attempt, contact_key) {
                tx.prepare_cached("UPDATE contacts SET events = events - 1 WHERE key = ?1")?
                    .execute([&key])?;
                if not_a_repeat {
                    stale_cards.push(key);
                }
            }
        }
    }
    if let Some(hash) = &stored.body_hash {
        let later: Vec<LaterCopy> = tx
            .prepare_cached(
                "SELECT seq, id, received_at, attempt, contact_key, repeat_of FROM events
                 WHERE endpoint_id = ?1 AND body_hash = ?2
                   AND (received_at > ?4 OR (received_at = ?4 AND id > ?3))
                   AND received_at <= ?5",
            )?
            .query_map(
                (
                    &raw.endpoint_id,
                    hash,
                    &raw.id,
                    raw.received_at,
                    raw.received_at + REPEAT_WINDOW_MICROS,
                ),
                |r| {
                    Ok(LaterCopy {
                        seq: r.get(0)?,
                        id: r.get(1)?,
                        received_at: r.get(2)?,
                        attempt: r.get(3)?,
                        contact_key: r.get(4)?,
                        repeat_of: r.get(5)?,
                    })
                },
            )?
            .collect::<rusqlite::Result<_>>()?;
        for copy in later {
            let first = first_identical(tx, &raw.endpoint_id, hash, &copy.id, copy.received_at)?;
            if first == copy.repeat_of {
                continue;
            }
            tx.prepare_cached("UPDATE events SET repeat_of = ?2 WHERE seq = ?1")?
                .execute((copy.seq, &first))?;
            if let (1, Some(key)) = (copy.attempt, copy.contact_key) {
                stale_cards.push(key);
            }
        }
    }
    stale_cards.sort_unstable();
    stale_cards.dedup();
    for key in stale_cards {
        tx.prepare_cached("DELETE FROM contact_cards WHERE contact_key = ?1")?
            .execute([key])?;
    }
    Ok(())
}

/// Identical unsigned deliveries on one endpoint this close together are probable repeats.
pub const REPEAT_WINDOW_MICROS: i64 = 5 * 60 * 1_000_000;

/// `X-Webhook-Message-Id` and which attempt at that message this delivery is.
fn attempt_of(tx: &Transaction, capture: &Capture) -> Result<(Option<String>, i64)> {
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
fn repeat_of(tx: &Transaction, capture: &Capture) -> Result<(Option<Vec<u8>>, Option<String>)> {
    let raw = &capture.raw;
    if capture.signature != Verdict::Unsigned || raw.body.is_empty() {
        return Ok((None, None));
    }
    let hash = Sha256::digest(&raw.body).to_vec();
    let first = first_identical(tx, &raw.endpoint_id, &hash, &raw.id, raw.received_at)?;
    Ok((Some(hash), first))
}

/// A later event with the same body as one just imported.
struct LaterCopy {
    seq: i64,
    id: String,
    received_at: i64,
    attempt: i64,
    contact_key: Option<String>,
    repeat_of: Option<String>,
}

/// The earliest event on `endpoint` with this body hash within the repeat window before
/// the event `id` at `at`. Events are ordered by (time, id), as attempts are, so that two
/// copies received in the same microsecond are told apart the same way in any insert order.
fn first_identical(
    tx: &Transaction,
    endpoint: &str,
    hash: &[u8],
    id: &str,
    at: i64,
) -> Result<Option<String>> {
    Ok(tx
        .prepare_cached(
            "SELECT id FROM events
             WHERE endpoint_id = ?1 AND body_hash = ?2 AND received_at >= ?3
               AND (received_at < ?4 OR (received_at = ?4 AND id < ?5))
             ORDER BY received_at, id LIMIT 1",
        )?
        .query_row((endpoint, hash, at - REPEAT_WINDOW_MICROS, at, id), |r| {
            r.get(0)
        })
        .optional()?)
}
