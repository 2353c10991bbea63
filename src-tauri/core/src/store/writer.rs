//! The one thread that writes the deliveries. Deliveries queue up while a commit is in
//! flight and go into the next transaction together (group commit), stored as received
//! and nothing more: each is acknowledged once the transaction holding it committed. What
//! the indexer derives goes to the derived file on the indexer's own connection
//! ([`crate::store::index_worker`]), which tells the writer's watchers
//! ([`Writer::announce_indexed`]); an acknowledgement never waits for it.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::capture::RawDelivery;
use crate::error::{Error, Result};
use crate::store::checkpoint::{Checkpointer, Rewind};
use crate::store::crowd::Crowd;
use crate::store::events::EventMeta;
use crate::store::indexer::{self, Applied, IndexProgress};
use crate::store::settings::{self, Setting};
use crate::store::trouble::{Faults, Health, refused, report_fault, stored_again};
use crate::store::{deliveries, erasure, forwards};

pub use crate::store::trouble::StoreTrouble;

/// Most deliveries in one transaction; bounds the latency a batch adds to its last member.
const MAX_BATCH: usize = 512;
/// Deliveries waiting for the writer before senders wait for room (backpressure).
const QUEUE_DEPTH: usize = 4096;

/// Work on the writer's connection.
type Task = Box<dyn FnOnce(&mut Connection) + Send>;

/// A delivery to store, and where it is forwarded if its endpoint forwards.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub raw: RawDelivery,
    pub forward: Option<ForwardOrder>,
}

/// A delivery's forward, queued in its own transaction.
#[derive(Debug, Clone)]
pub struct ForwardOrder {
    pub target: String,
    /// It came from this install's own forward or replay (see [`forwards::LOOP_HEADER`]).
    pub looped: bool,
}

/// A delivery waiting for its commit, and the sender waiting for its answer.
struct Pending {
    arrival: Box<Arrival>,
    done: oneshot::Sender<Result<()>>,
}

enum Job {
    Arrival(Pending),
    Task(Task),
    Stop,
}

/// What the writer thread reports to the rest of the process.
struct Signals {
    health: Health,
    /// The newest delivery committed (its seq).
    committed: watch::Sender<i64>,
    /// How far the indexer has come.
    indexed: watch::Sender<IndexProgress>,
    /// Events as they are indexed, for live viewers.
    published: broadcast::Sender<Arc<EventMeta>>,
    /// How many erasures the store has seen ([`erasure::generation`]), looked at after
    /// each task the writer runs (a forget, a prune): windows reload what they show when
    /// it changes.
    erasures: watch::Sender<i64>,
    /// The writer thread failed too often and has stopped for good.
    failed: watch::Sender<bool>,
    /// Held while the indexer publishes and while an erasure is announced: events derived
    /// before an erasure never reach viewers after it.
    announcing: Mutex<()>,
    /// When the deliveries' log is long enough to rewind between two commits.
    rewind: Arc<Rewind>,
    /// How crowded the writer is, and who watches events live (for the indexer).
    crowd: Arc<Crowd>,
}

/// Handle to the writer thread. Cheap to share behind an `Arc`.
pub struct Writer {
    jobs: mpsc::Sender<Job>,
    signals: Arc<Signals>,
    thread: Mutex<Option<JoinHandle<()>>>,
    checkpointer: Mutex<Option<Checkpointer>>,
}

impl Writer {
    /// Starts the writer on `conn`; indexed events are announced on `published`.
    /// `checkpoints` is a second read-write connection to the same database: WAL
    /// checkpoints run on it, on their own thread, so copying the log into the database
    /// never stalls a commit.
    pub fn start(
        conn: Connection,
        checkpoints: Connection,
        published: broadcast::Sender<Arc<EventMeta>>,
    ) -> Result<Writer> {
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let committed = deliveries::last_seq(&conn)?;
        let through = indexer::position(&conn)?;
        let signals = Arc::new(Signals {
            health: watch::Sender::new(None),
            committed: watch::Sender::new(committed),
            indexed: watch::Sender::new(IndexProgress {
                through,
                behind: deliveries::count_after(&conn, through)?,
            }),
            published,
            erasures: watch::Sender::new(erasure::generation(&conn)?),
            failed: watch::Sender::new(false),
            announcing: Mutex::new(()),
            rewind: Arc::default(),
            crowd: Arc::default(),
        });
        let (jobs, queue) = mpsc::channel(QUEUE_DEPTH);
        let thread_signals = signals.clone();
        let thread = std::thread::Builder::new()
            .name("hookscope-writer".into())
            .spawn(move || run(conn, queue, &thread_signals))
            .expect("the writer thread starts");
        let checkpointer = Checkpointer::start(checkpoints, signals.rewind.clone());
        Ok(Writer {
            jobs,
            signals,
            thread: Mutex::new(Some(thread)),
            checkpointer: Mutex::new(Some(checkpointer)),
        })
    }

    /// Whether deliveries are being refused right now, and since when.
    pub fn trouble(&self) -> Option<StoreTrouble> {
        self.signals.health.borrow().clone()
    }

    /// Every change of [`Writer::trouble`].
    pub fn watch_trouble(&self) -> watch::Receiver<Option<StoreTrouble>> {
        self.signals.health.subscribe()
    }

    /// Becomes true when the writer thread has failed too often to go on: nothing is
    /// stored from then on, and the process should exit for its supervisor to restart it.
    pub fn watch_failed(&self) -> watch::Receiver<bool> {
        self.signals.failed.subscribe()
    }

    /// Says that a thread of the store (`thread`: the indexer) failed with `message` and
    /// was started again: in the log and in [`Writer::trouble`], until a refusal replaces it.
    pub fn report_fault(&self, thread: &str, message: &str) {
        report_fault(&self.signals.health, thread, message);
    }

    /// Why a job's answer never came: the writer stopped, or it failed and started again.
    fn lost(&self) -> Error {
        if *self.signals.failed.borrow() || self.jobs.is_closed() {
            Error::ShuttingDown
        } else {
            Error::Fault("the store's writer failed while this waited".into())
        }
    }

    /// The seq of each newest committed delivery, as they are committed.
    pub fn watch_committed(&self) -> watch::Receiver<i64> {
        self.signals.committed.subscribe()
    }

    /// How far the indexer has come, as it goes.
    pub fn watch_indexed(&self) -> watch::Receiver<IndexProgress> {
        self.signals.indexed.subscribe()
    }

    /// The store's erasure count, as it changes.
    pub fn watch_erasures(&self) -> watch::Receiver<i64> {
        self.signals.erasures.subscribe()
    }

    /// Stores one delivery as received (and queues its forward); returns once committed.
    pub async fn store(&self, arrival: Arrival) -> Result<()> {
        let (done, committed) = oneshot::channel();
        self.jobs
            .send(Job::Arrival(Pending {
                arrival: Box::new(arrival),
                done,
            }))
            .await
            .map_err(|_| Error::ShuttingDown)?;
        committed.await.map_err(|_| self.lost())?
    }

    /// Stores deliveries pulled from a relay, in one transaction with the follower's
    /// cursor ([`Setting::FollowCursor`] = `cursor`): a follower stopped at any moment
    /// resumes exactly where what it stored ends. Returns how many were new here.
    pub async fn store_followed(&self, arrivals: Vec<Arrival>, cursor: String) -> Result<usize> {
        let signals = self.signals.clone();
        self.run(move |conn| {
            let tx = deliveries_transaction(conn)?;
            let mut last = None;
            let mut stored = 0;
            for arrival in &arrivals {
                if let Some(seq) = store_one(&tx, arrival)? {
                    last = Some(seq);
                    stored += 1;
                }
            }
            settings::put_setting(&tx, Setting::FollowCursor, &cursor)?;
            tx.commit()?;
            acknowledged(&signals, last);
            Ok(stored)
        })
        .await
    }

    /// Stores imported deliveries as received, in one transaction (no forward: they were
    /// delivered elsewhere, before); the indexer is told as for any commit.
    pub async fn store_imported(&self, batch: Vec<RawDelivery>) -> Result<deliveries::Saved> {
        let signals = self.signals.clone();
        self.run(move |conn| {
            let saved = deliveries::insert_batch(conn, &batch)?;
            if saved.imported > 0 {
                acknowledged(&signals, Some(deliveries::last_seq(conn)?));
            }
            Ok(saved)
        })
        .await
    }

    /// How crowded this writer is, and who watches events live.
    pub fn crowd(&self) -> &Arc<Crowd> {
        &self.signals.crowd
    }

    /// Says what the indexer committed: the progress moves on and live viewers get the
    /// events. For the indexer's own thread, after each commit of the derived file. An
    /// erasure announced since they were derived may have taken them out: then they are
    /// not shown, and the progress is left to the erasure's count ([`notice_erasures`])
    /// and the indexer's next batch.
    pub fn announce_indexed(&self, applied: Applied) {
        let _announcing = self.signals.announcing.lock().expect("announce lock");
        if applied.erasures < *self.signals.erasures.borrow() {
            return;
        }
        let newest = *self.signals.committed.borrow();
        self.signals.indexed.send_replace(IndexProgress {
            through: applied.through,
            behind: (newest - applied.through).max(0),
        });
        for meta in applied.metas {
            let _ = self.signals.published.send(meta);
        }
    }

    /// Runs a write on the writer's connection, in queue order with deliveries.
    pub async fn run<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let (done, finished) = oneshot::channel();
        let signals = self.signals.clone();
        let task: Task = Box::new(move |conn| {
            // A panic fails this work alone: its transaction rolls back as it unwinds, and
            // the writer goes on storing deliveries.
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&mut *conn)));
            let answer = outcome.unwrap_or_else(|panic| {
                let message = crate::faults::panic_message(panic.as_ref());
                report_fault(&signals.health, "writer", &message);
                roll_back_left_open(conn);
                Err(Error::Fault(message))
            });
            let _ = done.send(answer);
        });
        self.jobs
            .send(Job::Task(task))
            .await
            .map_err(|_| Error::ShuttingDown)?;
        finished.await.map_err(|_| self.lost())?
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

/// The writer thread's connection and what goes with it.
struct Writing<'a> {
    conn: Connection,
    signals: &'a Signals,
}

impl Writing<'_> {
    fn commit(&mut self, batch: &mut Vec<Pending>) {
        commit(&mut self.conn, batch, self.signals);
    }
}

/// The writer thread: serves jobs until stopped. When it panics, what it held is
/// dropped (never acknowledged: its senders get an error and retry), the failure is
/// reported, and it starts again on the same connection; after a few failures within a
/// minute ([`Faults`]) it stops for good and says so.
fn run(conn: Connection, mut queue: mpsc::Receiver<Job>, signals: &Signals) {
    let mut writing = Writing { conn, signals };
    let mut faults = Faults::default();
    loop {
        let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            serve(&mut writing, &mut queue)
        }));
        let Err(panic) = served else {
            break;
        };
        let message = crate::faults::panic_message(panic.as_ref());
        roll_back_left_open(&writing.conn);
        if faults.writer_failed(&signals.health, &message) {
            signals.failed.send_replace(true);
            break;
        }
    }
    // Whatever is still queued was never acknowledged: dropping it tells its senders.
    queue.close();
}

/// A transaction a panic left open is rolled back (a `Transaction` rolls back as it
/// unwinds; a `BEGIN` run as SQL does not).
fn roll_back_left_open(conn: &Connection) {
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
}

/// Serves jobs until stopped (or the queue closes).
fn serve(writing: &mut Writing<'_>, queue: &mut mpsc::Receiver<Job>) {
    let signals = writing.signals;
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    let mut stopping = false;
    while !stopping {
        let Some(first) = queue.blocking_recv() else {
            break;
        };
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Arrival(pending) => batch.push(pending),
                Job::Task(task) => {
                    writing.commit(&mut batch);
                    task(&mut writing.conn);
                    if let Err(error) = notice_erasures(&writing.conn, signals) {
                        tracing::warn!(%error, "could not read the erasure count");
                    }
                }
                Job::Stop => stopping = true,
            }
            if batch.len() < MAX_BATCH {
                next = queue.try_recv().ok();
            }
        }
        writing.commit(&mut batch);
        signals.rewind.between_commits(&writing.conn);
    }
}

/// Stores the deliveries in one transaction, then acknowledges each. If the batch fails,
/// each delivery is tried alone so one bad row cannot sink the others.
fn commit(conn: &mut Connection, batch: &mut Vec<Pending>, signals: &Signals) {
    if batch.is_empty() {
        return;
    }
    crate::faults::inject("writer.commit");
    signals.crowd.committing(batch.len());
    let together = store_all(conn, batch.iter().map(|p| &*p.arrival));
    match together {
        Ok(last) => {
            acknowledged(signals, last);
            for pending in batch.drain(..) {
                let _ = pending.done.send(Ok(()));
            }
        }
        Err(error) => {
            tracing::warn!(%error, size = batch.len(), "batch commit failed; retrying one by one");
            for pending in batch.drain(..) {
                match store_all(conn, std::iter::once(&*pending.arrival)) {
                    Ok(last) => {
                        acknowledged(signals, last);
                        let _ = pending.done.send(Ok(()));
                    }
                    Err(error) => {
                        refused(&signals.health, &error);
                        let _ = pending.done.send(Err(error));
                    }
                }
            }
        }
    }
}

/// One transaction holding these deliveries and their forwards; returns the newest seq.
fn store_all<'a>(
    conn: &mut Connection,
    arrivals: impl Iterator<Item = &'a Arrival>,
) -> Result<Option<i64>> {
    let tx = deliveries_transaction(conn)?;
    let mut last = None;
    for arrival in arrivals {
        if let Some(seq) = store_one(&tx, arrival)? {
            last = Some(seq);
        }
    }
    tx.commit()?;
    Ok(last)
}

/// A transaction that writes the deliveries' file only. Deferred: an immediate one would
/// take the derived file's write lock too, and wait for the indexer's batch. No other
/// connection writes this file, so its first read cannot go stale before its first write.
fn deliveries_transaction(conn: &mut Connection) -> Result<rusqlite::Transaction<'_>> {
    Ok(conn.transaction_with_behavior(rusqlite::TransactionBehavior::Deferred)?)
}

/// A delivery and its forward; `None` when one with the same id is already stored (seen
/// before: nothing to add).
fn store_one(tx: &rusqlite::Transaction, arrival: &Arrival) -> Result<Option<i64>> {
    let raw = &arrival.raw;
    let Some(seq) = deliveries::insert(tx, raw)? else {
        return Ok(None);
    };
    if let Some(forward) = &arrival.forward {
        forwards::queue(tx, seq, &forward.target, raw.received_at, forward.looped)?;
    }
    Ok(Some(seq))
}

fn acknowledged(signals: &Signals, last: Option<i64>) {
    stored_again(&signals.health);
    if let Some(last) = last {
        signals.committed.send_if_modified(|newest| {
            let newer = last > *newest;
            *newest = (*newest).max(last);
            newer
        });
    }
}

/// When the store's erasure count moved, windows are told. (The indexer forgets the shapes
/// it learned when it sees the count move.)
fn notice_erasures(conn: &Connection, signals: &Signals) -> Result<()> {
    let now = erasure::generation(conn)?;
    if now != *signals.erasures.borrow() {
        let _announcing = signals.announcing.lock().expect("announce lock");
        // The newest deliveries may be gone, or everything may wait to be derived again:
        // what "indexed up to the newest" means is measured again.
        signals.committed.send_replace(deliveries::last_seq(conn)?);
        let through = indexer::position(conn)?;
        signals.indexed.send_replace(IndexProgress {
            through,
            behind: deliveries::count_after(conn, through)?,
        });
        signals.erasures.send_replace(now);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{Capture, Decoding};
    use crate::store::db::{self, Synchronous};

    fn a_meta() -> Arc<EventMeta> {
        let raw = RawDelivery {
            id: "01900000-0000-7000-8000-000000000001".into(),
            received_at: 1_764_000_000_000_000,
            endpoint_id: "ep_x".into(),
            endpoint_name: "X".into(),
            method: "POST".into(),
            path: "/h/x".into(),
            query: None,
            headers: vec![("content-type".into(), "application/json".into())],
            remote_addr: None,
            client_ip: None,
            via_tunnel: false,
            body: bytes::Bytes::from_static(br#"{"a":1}"#),
        };
        Arc::new(EventMeta::from_capture(&Capture::build(
            raw,
            &Decoding::new(1 << 20),
        )))
    }

    /// The indexer commits a batch, an erasure takes some of it out and is announced, and
    /// only then does the indexer announce its batch (its thread was slow to get there):
    /// the batch is not shown, as it may hold what was erased.
    #[test]
    fn events_derived_before_an_announced_erasure_are_not_shown() {
        let dir = tempfile::tempdir().unwrap();
        let path = db::database_path(dir.path());
        let conn = db::open_writer(&path, Synchronous::Full).unwrap();
        let checkpoints = db::open_second_writer(&path, Synchronous::Full).unwrap();
        let (published, mut viewer) = broadcast::channel(16);
        let writer = Writer::start(conn, checkpoints, published).unwrap();
        let mut erasures = writer.watch_erasures();
        let clock = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        clock
            .block_on(writer.run(|conn| {
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                erasure::count_erasure(&tx)?;
                tx.commit()?;
                Ok(())
            }))
            .unwrap();
        // Announced after the task answered.
        clock
            .block_on(async {
                tokio::time::timeout(
                    std::time::Duration::from_secs(10),
                    erasures.wait_for(|n| *n == 1),
                )
                .await
            })
            .expect("the erasure is announced")
            .unwrap();

        writer.announce_indexed(Applied {
            through: 5,
            metas: vec![a_meta()],
            erasures: 0,
        });
        assert!(viewer.try_recv().is_err(), "derived before it: not shown");
        assert_eq!(writer.watch_indexed().borrow().through, 0);

        writer.announce_indexed(Applied {
            through: 5,
            metas: vec![a_meta()],
            erasures: 1,
        });
        assert!(viewer.try_recv().is_ok(), "derived after it: shown");
        assert_eq!(writer.watch_indexed().borrow().through, 5);
        writer.stop();
    }
}
