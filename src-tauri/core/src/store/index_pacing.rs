//! How the writer shares its one thread between acknowledging deliveries and applying
//! what the indexer derived. A delivery that arrives while an index slice is applied
//! waits for it, so slices are sized by time, not rows: the writer learns what a row
//! costs from the slices it applied. While deliveries keep arriving, indexing gets at
//! most a share of the writer's time (acknowledgements come first, and the index still
//! keeps up with a steady stream); when they stop, it takes longer slices back to back.

use std::time::{Duration, Instant};

/// While deliveries arrive: how long one slice may hold an acknowledgement up.
pub const SLICE_UNDER_LOAD: Duration = Duration::from_millis(2);
/// When none arrived for a moment: longer slices, fewer transactions (and fewer full-text
/// segments to merge); the first delivery after the quiet waits at most this long.
pub const SLICE_WHEN_QUIET: Duration = Duration::from_millis(10);
/// While deliveries arrive, after a slice that took `t` the writer only acknowledges for
/// `t * REST_PER_SLICE`: indexing gets at most a quarter of its time. At the cost a row
/// has in a release build (~85 µs), that applies ~2,900 rows a second under full load.
const REST_PER_SLICE: u32 = 3;
/// Fewest rows in a slice, whatever a row costs: each slice makes progress, and its
/// transaction's fixed cost is shared.
const MIN_ROWS: usize = 8;
/// What a row is thought to cost before any slice was measured.
const FIRST_GUESS_PER_ROW: Duration = Duration::from_micros(100);

#[derive(Debug)]
pub struct IndexPacing {
    /// What a row cost in recent slices (a moving average, their fixed costs included).
    per_row: Duration,
    /// Under load, no slice before this.
    rest_until: Option<Instant>,
}

impl Default for IndexPacing {
    fn default() -> Self {
        IndexPacing {
            per_row: FIRST_GUESS_PER_ROW,
            rest_until: None,
        }
    }
}

impl IndexPacing {
    /// How many rows fit in a slice of `budget`.
    pub fn rows_within(&self, budget: Duration) -> usize {
        let rows = budget.as_nanos() / self.per_row.as_nanos().max(1);
        usize::try_from(rows).unwrap_or(usize::MAX).max(MIN_ROWS)
    }

    /// How long, from `now`, deliveries still have the writer to themselves.
    pub fn rest_left(&self, now: Instant) -> Duration {
        self.rest_until
            .map_or(Duration::ZERO, |until| until.saturating_duration_since(now))
    }

    /// A slice of `rows` took `took`, ending at `now`.
    pub fn sliced(&mut self, rows: usize, took: Duration, now: Instant) {
        if let Ok(rows) = u32::try_from(rows)
            && rows > 0
        {
            self.per_row = (self.per_row * 3 + took / rows) / 4;
        }
        self.rest_until = Some(now + took * REST_PER_SLICE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_shrink_to_the_budget_as_rows_turn_out_dearer() {
        let mut pacing = IndexPacing::default();
        assert_eq!(pacing.rows_within(SLICE_UNDER_LOAD), 20);
        let start = Instant::now();
        // Rows cost 400 µs each (a debug build, a cold cache): the estimate moves towards it.
        for _ in 0..20 {
            pacing.sliced(20, Duration::from_micros(400 * 20), start);
        }
        // 2 ms holds 5 such rows: a slice still takes the fewest.
        assert_eq!(pacing.rows_within(SLICE_UNDER_LOAD), MIN_ROWS);
        assert_eq!(pacing.rows_within(SLICE_WHEN_QUIET), 25);
        // Cheaper again (40 µs): slices grow.
        for _ in 0..60 {
            pacing.sliced(25, Duration::from_micros(40 * 25), start);
        }
        assert!((49..=50).contains(&pacing.rows_within(SLICE_UNDER_LOAD)));
    }

    #[test]
    fn after_a_slice_deliveries_have_the_writer_for_three_times_as_long() {
        let mut pacing = IndexPacing::default();
        let start = Instant::now();
        assert_eq!(
            pacing.rest_left(start),
            Duration::ZERO,
            "nothing applied yet"
        );
        pacing.sliced(10, Duration::from_millis(2), start);
        assert_eq!(pacing.rest_left(start), Duration::from_millis(6));
        assert_eq!(
            pacing.rest_left(start + Duration::from_millis(4)),
            Duration::from_millis(2)
        );
        assert_eq!(
            pacing.rest_left(start + Duration::from_millis(7)),
            Duration::ZERO
        );
        // An empty slice (a batch read from a moved position) rests too, learning nothing.
        let before = pacing.rows_within(SLICE_UNDER_LOAD);
        pacing.sliced(0, Duration::from_millis(1), start);
        assert_eq!(pacing.rows_within(SLICE_UNDER_LOAD), before);
        assert_eq!(pacing.rest_left(start), Duration::from_millis(3));
    }

    #[test]
    fn absurd_measures_neither_stall_nor_overflow() {
        let mut pacing = IndexPacing::default();
        let start = Instant::now();
        pacing.sliced(usize::MAX, Duration::from_secs(1), start);
        pacing.sliced(1, Duration::ZERO, start);
        for _ in 0..100 {
            pacing.sliced(1_000_000, Duration::ZERO, start);
        }
        assert!(pacing.rows_within(SLICE_UNDER_LOAD) >= MIN_ROWS);
        assert!(pacing.rows_within(Duration::from_secs(3600)) > 1_000_000);
    }
}
