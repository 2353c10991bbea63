//! What the store tells the user when it cannot do its work: deliveries refused (a full
//! disk), a thread that failed and was started again, a writer that stopped for good.

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

use crate::error::Error;
use crate::timefmt;

/// Deliveries the store could not take since the last one it could. Senders only see a
/// 503, so the user is told: a full disk otherwise goes unnoticed until data is missing.
#[derive(Clone, Debug, PartialEq, Serialize, ts_rs::TS)]
pub struct StoreTrouble {
    /// When the first of them was refused.
    pub since: String,
    pub refused: u64,
    /// `disk_full` or `storage`: deliveries refused (what the user can do differs);
    /// `fault`: a thread of the store failed and was started again; `stopped`: the
    /// writer failed again and again and Hookscope stops (its supervisor restarts it).
    #[ts(type = "'disk_full' | 'storage' | 'fault' | 'stopped'")]
    pub code: &'static str,
    /// The last error.
    pub message: String,
}

/// `None` while deliveries are stored; set by a refused delivery (cleared by the next
/// commit) or by a thread's failure (kept, for the user to see it happened).
pub(crate) type Health = watch::Sender<Option<StoreTrouble>>;

pub(crate) fn report_fault(health: &Health, thread: &str, message: &str) {
    tracing::error!(thread, %message, "a thread of the store failed; it was started again");
    health.send_replace(Some(StoreTrouble {
        since: timefmt::format_micros(timefmt::now_micros()),
        refused: 0,
        code: "fault",
        message: format!("the store's {thread} failed ({message}) and was started again"),
    }));
}

/// Counts a delivery the store could not take.
pub(crate) fn refused(health: &Health, error: &Error) {
    health.send_modify(|trouble| {
        if trouble.as_ref().is_some_and(|t| t.code == "stopped") {
            return;
        }
        if trouble.as_ref().is_some_and(|t| t.code == "fault") {
            *trouble = None;
        }
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

/// Failures of the writer within [`FAULT_WINDOW`] after which it is not started again:
/// the same panic each time would otherwise refuse every delivery for ever.
const MOST_FAULTS: usize = 3;
const FAULT_WINDOW: Duration = Duration::from_secs(60);

/// The writer's recent failures: each is reported, and one too many stops it for good
/// (the same panic each time would otherwise refuse every delivery for ever).
#[derive(Default)]
pub(crate) struct Faults(Vec<Instant>);

impl Faults {
    /// Reports a failure of the writer; `true` when it must stop for good.
    pub(crate) fn writer_failed(&mut self, health: &Health, message: &str) -> bool {
        self.0.retain(|at| at.elapsed() < FAULT_WINDOW);
        self.0.push(Instant::now());
        if self.0.len() < MOST_FAULTS {
            report_fault(health, "writer", message);
            return false;
        }
        tracing::error!(%message, "the store's writer failed {MOST_FAULTS} times within {FAULT_WINDOW:?}: it stops, and Hookscope with it");
        health.send_replace(Some(StoreTrouble {
            since: timefmt::format_micros(timefmt::now_micros()),
            refused: 0,
            code: "stopped",
            message: format!(
                "the store's writer failed {MOST_FAULTS} times in a minute ({message}); Hookscope stops"
            ),
        }));
        true
    }
}

/// A commit ends a refusal; a thread's failure stays to be seen.
pub(crate) fn stored_again(health: &Health) {
    health.send_if_modified(|trouble| {
        let refusal = trouble
            .as_ref()
            .is_some_and(|t| matches!(t.code, "disk_full" | "storage"));
        if refusal {
            *trouble = None;
        }
        refusal
    });
}
