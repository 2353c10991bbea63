//! WAL checkpoints on a connection and a thread of their own, so copying the log into the
//! database never stalls a commit; and the rewinds of the deliveries' log that only the
//! writer can make.

use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// How often the log is copied into the database. Between checkpoints the WAL grows by
/// what was written meanwhile; readers see everything either way.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);
/// A deliveries' log this long (4 KiB frames, 32 MiB) is rewound by the writer.
const LONG_LOG_FRAMES: i64 = 8192;
/// While the log is long, or growing so fast that it soon will be, checkpoints follow
/// the writer this closely, so that what is left to copy when it rewinds is a few
/// commits' worth.
const CATCHING_UP_EVERY: Duration = Duration::from_millis(5);
/// A log growing fast enough to be long within this is followed closely (8 s: 4 MiB/s,
/// some 1,500 deliveries a second; slower flows find the log all copied between commits
/// and rewind it on their own).
const REACHES_LONG_WITHIN: Duration = Duration::from_secs(8);
/// The writer is told to rewind when the checkpoints copied all they found and the log grew
/// by at most this since their previous look (1 MiB): about what the writer then copies
/// on its own thread.
const CLOSE_FRAMES: i64 = 256;

/// Says when the writer should rewind the deliveries' log.
///
/// Only a writer that starts a transaction when the log is all copied into the database
/// starts the log again from its beginning. Under a steady flow of deliveries the writer
/// commits back to back and never finds it so: the log grew by the whole flow (1.4 GB in
/// 20 s at 64 senders), every frame written on new disk blocks that the kernel zeroes on
/// the writer's thread. So once the log is long and the background checkpoints have copied
/// all but the newest commits, the writer copies the rest itself between two commits
/// ([`Rewind::between_commits`]): its next transaction then writes the log from the start.
pub struct Rewind {
    due: AtomicBool,
    /// [`LONG_LOG_FRAMES`], shorter in tests.
    long_log_frames: i64,
}

impl Default for Rewind {
    fn default() -> Rewind {
        Rewind {
            due: AtomicBool::new(false),
            long_log_frames: LONG_LOG_FRAMES,
        }
    }
}

impl Rewind {
    /// Run by the writer between commits, on its connection: copies what is left of a long
    /// log when it is due. A reader still on an older snapshot keeps its frames (and the
    /// log) until the next try; nothing waits for it.
    pub fn between_commits(&self, writer: &Connection) {
        if !self.due.swap(false, Ordering::Relaxed) {
            return;
        }
        if let Err(error) = wal_checkpoint(writer, "main", Mode::Passive) {
            tracing::warn!(%error, "WAL checkpoint before a rewind failed");
        }
    }
}

pub struct Checkpointer {
    stop: std::sync::mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Checkpointer {
    /// Checkpoints on `conn`; `rewind` is told when the writer should rewind the log.
    pub fn start(conn: Connection, rewind: Arc<Rewind>) -> Checkpointer {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("hookscope-checkpoint".into())
            .spawn(move || {
                let mut log = LogWatch::new(&conn);
                let mut every = CHECKPOINT_EVERY;
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(every)
                {
                    // PASSIVE never waits for the writer or readers; what it cannot copy
                    // now is copied next time.
                    every = match wal_checkpoint(&conn, "main", Mode::Passive) {
                        Ok(progress) => log.after(progress, &rewind).unwrap_or(every),
                        Err(error) => {
                            tracing::warn!(%error, "WAL checkpoint failed");
                            CHECKPOINT_EVERY
                        }
                    };
                    if log.derived_due()
                        && let Err(error) =
                            wal_checkpoint(&conn, crate::store::db::DERIVED, Mode::Passive)
                    {
                        tracing::warn!(%error, "WAL checkpoint of the derived file failed");
                    }
                }
                let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
            })
            .expect("the checkpoint thread starts");
        Checkpointer { stop, thread }
    }

    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

/// What the checkpoint thread knows of the deliveries' log between two checkpoints.
struct LogWatch {
    /// Its frames after the last checkpoint, and when that was.
    frames: i64,
    at: Instant,
    /// The derived file's last checkpoint: it keeps the slower pace.
    derived_at: Instant,
    /// The database file. SQLite syncs it only after a checkpoint that copied the whole
    /// log, which under a steady flow is the writer's: it then waited for every page copied
    /// since (20-90 ms measured). Synced here as the copies go, the writer's sync finds a
    /// few pages.
    database: Option<Arc<File>>,
}

impl LogWatch {
    fn new(conn: &Connection) -> LogWatch {
        LogWatch {
            frames: 0,
            at: Instant::now(),
            derived_at: Instant::now(),
            database: conn
                .path()
                .filter(|path| !path.is_empty())
                .and_then(database_file),
        }
    }

    /// Whether the derived file's log is due a checkpoint.
    fn derived_due(&mut self) -> bool {
        let due = self.derived_at.elapsed() >= CHECKPOINT_EVERY;
        if due {
            self.derived_at = Instant::now();
        }
        due
    }

    /// After a checkpoint: when to checkpoint again (`None`: as before, it found another
    /// checkpoint running), and whether the writer should rewind.
    fn after(&mut self, progress: Progress, rewind: &Rewind) -> Option<Duration> {
        let Progress { frames, copied, .. } = progress;
        // Another checkpoint was running (the writer's).
        if frames < 0 {
            return None;
        }
        let now = Instant::now();
        let since = now.duration_since(std::mem::replace(&mut self.at, now));
        let before = std::mem::replace(&mut self.frames, frames);
        // Rewound meanwhile: all of it is new.
        let grew = if frames >= before {
            frames - before
        } else {
            frames
        };
        let long = rewind.long_log_frames;
        let soon_long =
            grew as f64 * REACHES_LONG_WITHIN.as_secs_f64() >= long as f64 * since.as_secs_f64();
        if grew == 0 || (frames < long && !soon_long) {
            return Some(CHECKPOINT_EVERY);
        }
        if let Some(Err(error)) = self.database.as_deref().map(File::sync_data) {
            tracing::warn!(%error, "syncing the database file failed");
            return Some(CHECKPOINT_EVERY);
        }
        // All copied but the last few milliseconds of writes: the writer copies those in
        // a moment, then rewinds.
        if frames >= long && copied == frames && grew <= CLOSE_FRAMES {
            rewind.due.store(true, Ordering::Relaxed);
        }
        Some(CATCHING_UP_EVERY)
    }
}

/// How a checkpoint treats the writer and readers (SQLite's modes).
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// Copies what it can without waiting for anyone.
    Passive,
    /// Also waits for readers to leave the log, so the next writer starts it again.
    Restart,
    /// As `Restart`, and empties the log file.
    Truncate,
}

/// What a checkpoint answered.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// It gave up: another checkpoint was running, or (not `Passive`) the readers or the
    /// writer it waited for stayed longer than the connection's busy timeout.
    pub busy: bool,
    /// The log's frames, and how many of them are copied into the database (both -1 when
    /// another checkpoint was running, or the file keeps no log).
    pub frames: i64,
    pub copied: i64,
}

/// Checkpoints `schema`'s log (`main`, or an attached file's name).
pub fn wal_checkpoint(conn: &Connection, schema: &str, mode: Mode) -> rusqlite::Result<Progress> {
    let mode = match mode {
        Mode::Passive => "PASSIVE",
        Mode::Restart => "RESTART",
        Mode::Truncate => "TRUNCATE",
    };
    conn.query_row(
        &format!("PRAGMA \"{schema}\".wal_checkpoint({mode})"),
        [],
        |row| {
            Ok(Progress {
                busy: row.get::<_, i64>(0)? != 0,
                frames: row.get(1)?,
                copied: row.get(2)?,
            })
        },
    )
}

/// The database file, for syncing: opened once per process and never closed, because
/// closing any descriptor of a file releases every POSIX lock the process holds on it,
/// SQLite's included. Linux only: elsewhere std's `sync_data` flushes the drive's cache
/// (macOS) or needs a writable handle (Windows); there the writer's checkpoint syncs it all.
fn database_file(path: &str) -> Option<Arc<File>> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    static OPEN: std::sync::Mutex<std::collections::BTreeMap<String, Arc<File>>> =
        std::sync::Mutex::new(std::collections::BTreeMap::new());
    let mut open = OPEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(file) = open.get(path) {
        return Some(file.clone());
    }
    let file = Arc::new(File::open(path).ok()?);
    open.insert(path.to_string(), file.clone());
    Some(file)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicI64;

    use super::*;
    use crate::store::db::{self, Synchronous};

    const COMMITS: i64 = 10_000;
    /// 16 KiB each: 160 MiB in all.
    const COMMIT_BYTES: u64 = 16 << 10;
    /// Commits a reader on one old snapshot waits for.
    const HELD_FOR: i64 = 500;

    /// What a flood did.
    struct Flood {
        /// How much the log file grew in the second half of the flood, when the first
        /// checkpoints (half a second in) and the old snapshot (a quarter in) are behind.
        second_half_growth: u64,
        stored: i64,
        /// Commits made while a reader held one snapshot.
        committed_under_old_snapshot: i64,
    }

    /// Commits of 16 KiB, back to back and each synced, as a flood of deliveries makes
    /// them, with short reads alongside as the indexer and the window make, and once a
    /// reader that keeps its snapshot until 500 more commits were made.
    fn flood(rewinding: bool) -> Flood {
        let dir = tempfile::tempdir().unwrap();
        let path = db::database_path(dir.path());
        let mut writer = db::open_writer(&path, Synchronous::Full).unwrap();
        writer.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        writer
            .execute_batch("CREATE TABLE flood (body BLOB)")
            .unwrap();
        // Rewound at 1 MiB.
        let rewind = Arc::new(Rewind {
            long_log_frames: 256,
            ..Rewind::default()
        });
        let checkpointer = Checkpointer::start(
            db::open_second_writer(&path, Synchronous::Full).unwrap(),
            rewind.clone(),
        );
        let log = path.with_extension("db-wal");
        let committed = Arc::new(AtomicI64::new(0));
        let reader = std::thread::spawn({
            let (path, committed) = (path.clone(), committed.clone());
            move || {
                let conn = db::open_reader(&path).unwrap();
                let count = || -> i64 {
                    conn.query_row("SELECT count(*) FROM flood", [], |r| r.get(0))
                        .unwrap()
                };
                let read_until = |n: i64| {
                    while committed.load(Ordering::Relaxed) < n {
                        count();
                        // The indexer reads a batch, then derives from it elsewhere.
                        std::thread::sleep(Duration::from_millis(2));
                    }
                };
                read_until(COMMITS / 4);
                conn.execute_batch("BEGIN").unwrap();
                count();
                let held_from = committed.load(Ordering::Relaxed);
                let deadline = Instant::now() + Duration::from_secs(10);
                while committed.load(Ordering::Relaxed) < held_from + HELD_FOR
                    && Instant::now() < deadline
                {
                    std::thread::sleep(Duration::from_millis(1));
                }
                let held = committed.load(Ordering::Relaxed) - held_from;
                conn.execute_batch("COMMIT").unwrap();
                read_until(COMMITS);
                held
            }
        });
        let log_size = || std::fs::metadata(&log).unwrap().len();
        let mut half_way = 0;
        for n in 1..=COMMITS {
            let tx = writer.transaction().unwrap();
            tx.execute(
                "INSERT INTO flood VALUES (zeroblob(?1))",
                [COMMIT_BYTES as i64],
            )
            .unwrap();
            tx.commit().unwrap();
            committed.store(n, Ordering::Relaxed);
            if rewinding {
                rewind.between_commits(&writer);
            }
            if n == COMMITS / 2 {
                half_way = log_size();
            }
        }
        let second_half_growth = log_size() - half_way;
        let committed_under_old_snapshot = reader.join().unwrap();
        checkpointer.stop();
        let check: String = writer
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        Flood {
            second_half_growth,
            stored: writer
                .query_row("SELECT count(*) FROM flood", [], |r| r.get(0))
                .unwrap(),
            committed_under_old_snapshot,
        }
    }

    /// 80 MiB in the second half of a flood: with the writer rewinding, the log file does
    /// not grow with it; a reader on an old snapshot holds no commit up; every commit is
    /// there.
    #[test]
    fn a_flood_of_commits_keeps_the_log_short() {
        let flood = flood(true);
        assert_eq!(flood.stored, COMMITS);
        let second_half = (COMMITS / 2) as u64 * COMMIT_BYTES;
        // Without the writer's part it grows by 1.5 times what is written (frames carry
        // pages and headers). With it, a few percent; 26% once, with the checkpoint thread
        // starved while the whole suite ran on two cores.
        assert!(
            flood.second_half_growth < second_half / 2,
            "the log grew {} bytes while {second_half} were written",
            flood.second_half_growth
        );
        assert!(
            flood.committed_under_old_snapshot >= HELD_FOR,
            "{} commits under an old snapshot in 10 s",
            flood.committed_under_old_snapshot
        );
    }

    /// The same flood without the writer's part grows the log with nearly all of it: the
    /// test above measures the rewind, not chance.
    #[test]
    fn without_the_writer_the_log_grows_with_the_flood() {
        let flood = flood(false);
        assert_eq!(flood.stored, COMMITS);
        let second_half = (COMMITS / 2) as u64 * COMMIT_BYTES;
        assert!(
            flood.second_half_growth > second_half / 2,
            "the log grew only {} bytes while {second_half} were written",
            flood.second_half_growth
        );
    }
}
