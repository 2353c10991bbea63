//! The indexer's thread in a running server: it catches up, then follows each commit,
//! reading and decoding batches ([`read`]) and deriving from them ([`apply`]) at a lower
//! priority, on a connection of its own that writes only the derived file: the writer's
//! acknowledgements never wait for it. While nobody watches live, it also gives a crowded
//! writer the CPU ([`crate::store::crowd`]). Apart from the indexer itself so that the indexer
//! knows nothing of the writer.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::store::db;
use crate::store::indexer::{MainReads, Metas, apply, position, read};
use crate::store::shapes::ShapeLearner;
use crate::store::writer::Writer;

/// How long it waits after a failure (a full disk) before trying again.
const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// What the indexer thread of a running server works with.
pub struct IndexerHandle {
    pub database: PathBuf,
    pub writer: Arc<Writer>,
    pub inflate_limit: usize,
    pub shutdown: CancellationToken,
    /// To wait for new deliveries from a thread that is not the runtime's.
    pub runtime: tokio::runtime::Handle,
}

/// The longest pause before an indexer that keeps failing is started again.
const MOST_PAUSE: std::time::Duration = std::time::Duration::from_secs(60);

/// Starts the indexer thread of a running server: it catches up, then follows each commit.
/// If it fails (a panic, an error it cannot go on from), the failure is reported in the
/// store's trouble and the log, and it starts again after a pause that doubles up to a
/// minute: it never stops silently while the server runs.
pub fn start(handle: IndexerHandle) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("hookscope-indexer".into())
        .spawn(move || {
            lower_priority();
            let mut pause = RETRY_AFTER;
            loop {
                let outcome =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| follow(&handle)));
                if handle.shutdown.is_cancelled() || *handle.writer.watch_failed().borrow() {
                    return;
                }
                let message = match outcome {
                    Ok(Ok(())) => return,
                    Ok(Err(error)) => error.to_string(),
                    Err(panic) => crate::faults::panic_message(panic.as_ref()),
                };
                handle.writer.report_fault("indexer", &message);
                let shutdown = handle.shutdown.clone();
                let stopping = handle.runtime.block_on(async {
                    tokio::select! {
                        () = tokio::time::sleep(pause) => false,
                        () = shutdown.cancelled() => true,
                    }
                });
                if stopping {
                    return;
                }
                pause = (pause * 2).min(MOST_PAUSE);
            }
        })
        .expect("the indexer thread starts")
}

fn follow(handle: &IndexerHandle) -> Result<()> {
    let mut conn = db::open_indexer(&handle.database)?;
    // The deliveries' file is read apart from the derivation's transaction: holding its
    // snapshot for a whole batch would keep the writer from rewinding its log.
    let main_reads = db::open_reader(&handle.database)?;
    // Forgotten after a failed batch (its transaction rolled back) and after an erasure.
    let mut shapes = ShapeLearner::default();
    let mut committed: watch::Receiver<i64> = handle.writer.watch_committed();
    let mut through = handle.writer.watch_indexed().borrow().through;
    // Said once per spell of failures (a full disk), not at every try.
    let mut failing = false;
    let crowd = handle.writer.crowd();
    // The writer's commits when the indexer last looked, before its last batch.
    let mut since = crowd.commits();
    loop {
        if handle.shutdown.is_cancelled() {
            return Ok(());
        }
        crowd.give_way(&mut since, || handle.shutdown.is_cancelled());
        crate::faults::inject("indexer.read");
        let step = read(&conn, through, handle.inflate_limit).and_then(|batch| match batch {
            Some(batch) => {
                let applied = apply(
                    &mut conn,
                    MainReads::Apart(&main_reads),
                    &mut shapes,
                    batch,
                    Metas::Made,
                )?;
                through = applied.through;
                handle.writer.announce_indexed(applied);
                Ok(true)
            }
            None => {
                // An erasure may have set the position back to derive everything again:
                // then there is work at once.
                let stored = position(&conn)?;
                Ok(std::mem::replace(&mut through, stored) != stored)
            }
        });
        let retry = match step {
            Ok(true) => {
                if std::mem::take(&mut failing) {
                    tracing::info!("indexing again");
                }
                continue;
            }
            Ok(false) => None,
            Err(crate::error::Error::ShuttingDown) => return Ok(()),
            Err(error) => {
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!(%error, "indexing failed; trying again every second");
                }
                // What was applied is the truth: go on from the stored position.
                through = position(&conn)?;
                Some(RETRY_AFTER)
            }
        };
        // Nothing new: wait for the next commit (this process's writer is the store's only
        // one, so every new delivery and every erasure is one). After a failure: a pause.
        let shutdown = handle.shutdown.clone();
        let stopping = handle.runtime.block_on(async {
            match retry {
                None => tokio::select! {
                    changed = committed.changed() => changed.is_err(),
                    () = shutdown.cancelled() => true,
                },
                Some(pause) => tokio::select! {
                    () = tokio::time::sleep(pause) => false,
                    () = shutdown.cancelled() => true,
                },
            }
        });
        if stopping {
            return Ok(());
        }
    }
}

/// Under load the indexer yields to acknowledging deliveries, but not so far that live
/// views starve: nice 5. Measured on two cores with a relay and its follower under eight
/// senders (live follow p99) and with wrk (acknowledged req/s at 64 senders): at 0, 27–47
/// ms and 16,200; at 5, 55–111 ms and 18,100; at 10, 254–341 ms; at 19, 120–404 ms and
/// 21,300. Above 250 ms a follower's window lags visibly, so 5.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: sets this thread's own nice value; no memory is touched.
    unsafe {
        let thread = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, thread, 5);
    }
}
