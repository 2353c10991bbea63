//! How crowded the writer is, and whether anyone watches events live: what the indexer
//! weighs before deriving its next batch ([`crate::store::index_worker`]).
//!
//! On two cores, deriving competes with acknowledging. Measured with wrk against
//! `hookscope serve` (8 s runs): with the indexer stopped, 8 senders went from 8,700 to
//! 15,000 req/s and 64 senders from 19,300 to 32,500, as fast as a bare SQLite writer. So
//! while nobody watches live, a writer crowded with deliveries gets the CPU and the
//! indexer waits for the crowd to thin, a second at most before each batch. A window, a
//! browser tab or a follower's stream watching keeps the indexer eager.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Deliveries per commit from which the writer counts as crowded: that many were waiting
/// while the commit before ran. A steady 2,000 a second, one sender at a time, makes 1 to 2.
const CROWDED_BATCH: u64 = 3;
/// How long the indexer looks at the writer before deciding the crowd has thinned.
const LOOK_FOR: Duration = Duration::from_millis(10);
/// The longest the indexer waits before a batch while nobody watches.
pub const UNWATCHED_PAUSE: Duration = Duration::from_secs(1);

/// The writer's commits so far, and who watches. Shared by the writer (which counts), the
/// live streams (which watch) and the indexer (which weighs).
#[derive(Default)]
pub struct Crowd {
    commits: AtomicU64,
    stored: AtomicU64,
    watchers: AtomicUsize,
}

/// The writer's commits and the deliveries they carried, up to a moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Commits {
    commits: u64,
    deliveries: u64,
}

impl Commits {
    /// Whether the commits since `before` carried several deliveries each on average.
    fn crowded_since(self, before: Commits) -> bool {
        let commits = self.commits - before.commits;
        commits > 0 && self.deliveries - before.deliveries >= CROWDED_BATCH * commits
    }
}

impl Crowd {
    /// Counted by the writer for each transaction of deliveries.
    pub fn committing(&self, deliveries: usize) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.stored.fetch_add(deliveries as u64, Ordering::Relaxed);
    }

    pub fn commits(&self) -> Commits {
        Commits {
            commits: self.commits.load(Ordering::Relaxed),
            deliveries: self.stored.load(Ordering::Relaxed),
        }
    }

    /// Someone watches events live until the guard is dropped.
    pub fn watching(self: &Arc<Crowd>) -> Watching {
        self.watchers.fetch_add(1, Ordering::Relaxed);
        Watching(self.clone())
    }

    pub fn watched(&self) -> bool {
        self.watchers.load(Ordering::Relaxed) > 0
    }

    /// Before the indexer's next batch: while nobody watches and the writer has been
    /// crowded since `since` (its last look, before the batch just derived), waits for the
    /// crowd to thin, [`UNWATCHED_PAUSE`] at most or until `stopping` says so. Returns how
    /// long it waited; `since` is moved to now.
    pub fn give_way(&self, since: &mut Commits, stopping: impl Fn() -> bool) -> Duration {
        let started = Instant::now();
        let mut before = std::mem::replace(since, self.commits());
        while !self.watched()
            && since.crowded_since(before)
            && started.elapsed() < UNWATCHED_PAUSE
            && !stopping()
        {
            std::thread::sleep(LOOK_FOR);
            before = std::mem::replace(since, self.commits());
        }
        started.elapsed()
    }
}

/// A live view of events, counted while it lives.
pub struct Watching(Arc<Crowd>);

impl Drop for Watching {
    fn drop(&mut self) {
        self.0.watchers.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;

    /// Far below the second a wrongly kept wait would last, far above a scheduler's hiccup.
    const IMMEDIATE: Duration = Duration::from_millis(100);

    /// A writer committing `per_commit` deliveries every millisecond, 20 ms in, and the
    /// commits counted before it began.
    struct Writing {
        crowd: Arc<Crowd>,
        before: Commits,
        stop: Arc<AtomicBool>,
        thread: std::thread::JoinHandle<()>,
    }

    impl Writing {
        fn start(per_commit: usize) -> Writing {
            let crowd = Arc::new(Crowd::default());
            let before = crowd.commits();
            let stop = Arc::new(AtomicBool::new(false));
            let thread = std::thread::spawn({
                let (crowd, stop) = (crowd.clone(), stop.clone());
                move || {
                    while !stop.load(Ordering::Relaxed) {
                        crowd.committing(per_commit);
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            });
            std::thread::sleep(Duration::from_millis(20));
            Writing {
                crowd,
                before,
                stop,
                thread,
            }
        }

        /// Stops the writer `after` from now, without waiting.
        fn stop_after(&self, after: Duration) -> std::thread::JoinHandle<()> {
            let stop = self.stop.clone();
            std::thread::spawn(move || {
                std::thread::sleep(after);
                stop.store(true, Ordering::Relaxed);
            })
        }

        fn join(self) {
            self.stop.store(true, Ordering::Relaxed);
            self.thread.join().unwrap();
        }
    }

    /// A crowded writer is waited for while it lasts; once it stops the indexer goes on.
    #[test]
    fn a_crowd_is_waited_for_while_it_lasts() {
        let writing = Writing::start(8);
        let stopper = writing.stop_after(Duration::from_millis(300));
        let mut since = writing.before;
        let waited = writing.crowd.give_way(&mut since, || false);
        stopper.join().unwrap();
        writing.join();
        assert!(
            waited >= Duration::from_millis(100) && waited < UNWATCHED_PAUSE,
            "waited {waited:?} for a 300 ms crowd"
        );
    }

    /// A crowd that never thins holds the indexer up a second at most.
    #[test]
    fn an_endless_crowd_is_waited_for_a_second_at_most() {
        let writing = Writing::start(8);
        let mut since = writing.before;
        let waited = writing.crowd.give_way(&mut since, || false);
        writing.join();
        assert!(
            waited >= UNWATCHED_PAUSE && waited < UNWATCHED_PAUSE * 2,
            "waited {waited:?}"
        );
    }

    /// Nobody waits when someone watches, when deliveries come one at a time, or when the
    /// server stops; the watch ends with its guard.
    #[test]
    fn nothing_waits_while_watched_uncrowded_or_stopping() {
        let writing = Writing::start(8);
        let crowd = writing.crowd.clone();
        let watching = crowd.watching();
        assert!(crowd.watched());
        let mut since = writing.before;
        assert!(crowd.give_way(&mut since, || false) < IMMEDIATE);
        drop(watching);
        assert!(!crowd.watched());
        std::thread::sleep(Duration::from_millis(20));
        assert!(crowd.give_way(&mut since, || true) < IMMEDIATE);
        writing.join();

        let one_at_a_time = Writing::start(1);
        let mut since = one_at_a_time.before;
        assert!(one_at_a_time.crowd.give_way(&mut since, || false) < IMMEDIATE);
        one_at_a_time.join();
    }
}
