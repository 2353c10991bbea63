//! The one thread that writes. Deliveries queue up while a commit is in flight and go
//! into the next transaction together (group commit): each is acknowledged only after the
//! transaction holding it committed, and only then published to live viewers.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::{Connection, Transaction};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::capture::Capture;
use crate::error::{Error, Result};
use crate::store::deliveries::{in_transaction, insert_capture};
use crate::store::events::EventMeta;
use crate::store::shapes::ShapeLearner;
use crate::timefmt;

/// Most deliveries in one transaction; bounds the latency a batch adds to its last member.
const MAX_BATCH: usize = 512;
/// Deliveries waiting for the writer before senders wait for room (backpressure).
const QUEUE_DEPTH: usize = 4096;

/// Work on the writer's connection, with the shapes it learns (see [`Writer::run_learning`]).
type Task = Box<dyn FnOnce(&mut Connection, &mut ShapeLearner) + Send>;

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
#[derive(Clone, Debug, PartialEq, Serialize, ts_rs::TS)]
pub struct StoreTrouble {
    /// When the first of them was refused.
    pub since: String,
    pub refused: u64,
    /// `disk_full` or `storage`: what the user can do differs.
    #[ts(type = "'disk_full' | 'storage'")]
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
        self.run_learning(move |conn, _| work(conn)).await
    }

    /// Like [`Writer::run`], for work that learns shapes (history, the learning flag).
    pub async fn run_learning<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &mut ShapeLearner) -> Result<T> + Send + 'static,
    {
        let (done, finished) = oneshot::channel();
        let task: Task = Box::new(move |conn, shapes| {
            let _ = done.send(work(conn, shapes));
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
    // The writer owns the shapes it keeps current: no other thread learns for this store.
    let mut shapes = ShapeLearner::default();
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
                    commit(&mut conn, &mut shapes, &mut batch, &published, health);
                    task(&mut conn, &mut shapes);
                }
                Job::Stop => stopping = true,
            }
            if batch.len() < MAX_BATCH {
                next = queue.try_recv().ok();
            }
        }
        commit(&mut conn, &mut shapes, &mut batch, &published, health);
    }
    // Whatever is still queued was never acknowledged: dropping it tells its senders.
    queue.close();
}

/// Commits the batch in one transaction, then acknowledges and publishes each delivery.
/// If the batch fails, each delivery is tried alone so one bad row cannot sink the others.
fn commit(
    conn: &mut Connection,
    shapes: &mut ShapeLearner,
    batch: &mut Vec<Pending>,
    published: &broadcast::Sender<Arc<EventMeta>>,
    health: &Health,
) {
    if batch.is_empty() {
        return;
    }
    let together = in_transaction(conn, shapes, |tx, shapes| {
        batch
            .iter_mut()
            .try_for_each(|pending| store(tx, shapes, pending))
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
                match in_transaction(conn, shapes, |tx, shapes| store(tx, shapes, &mut pending)) {
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

fn store(tx: &Transaction, shapes: &mut ShapeLearner, pending: &mut Pending) -> Result<()> {
    if let Some(stored) = insert_capture(tx, shapes, &pending.capture)? {
        pending.meta.message_id = stored.message_id;
        pending.meta.attempt = stored.attempt;
        pending.meta.repeat_of = stored.repeat_of;
        pending.meta.drift = stored
            .drift
            .and_then(|d| serde_json::value::RawValue::from_string(d).ok());
    }
    Ok(())
}
