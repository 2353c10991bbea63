//! `make bench`: what acknowledging costs without HTTP (the store's writer alone), and what
//! indexing those deliveries costs afterwards. Figures, not pass/fail.

use std::time::Instant;

use bytes::Bytes;
use hookscope_core::capture::RawDelivery;
use hookscope_core::store::db::{self, Synchronous};
use hookscope_core::store::indexer;

mod support;

use support::{SALE, process_cpu_micros, thread_cpu_micros};

fn main() {
    writer_alone();
}

/// What acknowledging costs without HTTP: rows per second the store takes as received at a
/// given number of deliveries per transaction (synchronous=FULL), and what indexing them
/// costs afterwards (the same deliveries, in the indexer's batches).
fn writer_alone() {
    println!("## Writer alone: sale payload stored as received, synchronous=FULL");
    println!("| rows per commit | rows/s | wall µs per row | CPU µs per row |");
    println!("|---:|---:|---:|---:|");
    let raw = |i: usize| support::delivery(i, i as i64, Bytes::from_static(SALE));
    let mut last = None;
    for per_commit in [1usize, 16, 64, 256] {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = db::open_writer(&db::database_path(dir.path()), Synchronous::Full).unwrap();
        let total = (per_commit * 40).clamp(2_000, 20_000);
        let deliveries: Vec<RawDelivery> = (0..total).map(raw).collect();
        let started = Instant::now();
        let cpu_before = thread_cpu_micros();
        for chunk in deliveries.chunks(per_commit) {
            let tx = conn.transaction().unwrap();
            for delivery in chunk {
                hookscope_core::store::deliveries::insert(&tx, delivery).unwrap();
            }
            tx.commit().unwrap();
        }
        let seconds = started.elapsed().as_secs_f64();
        let cpu = (thread_cpu_micros() - cpu_before) as f64;
        println!(
            "| {per_commit} | {:.0} | {:.1} | {:.1} |",
            total as f64 / seconds,
            seconds * 1e6 / total as f64,
            cpu / total as f64
        );
        last = Some((dir, conn, total));
    }
    let (_dir, mut conn, total) = last.unwrap();
    let started = Instant::now();
    let cpu_before = process_cpu_micros();
    indexer::run_to_end(&mut conn, 1 << 20, |_, _| {}).unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let cpu = (process_cpu_micros() - cpu_before) as f64;
    println!(
        "\nIndexing them afterwards (`hookscope reindex`'s path: read and decode, derive, checkpoints, each on a thread): {:.0} deliveries/s, {:.1} µs CPU each in all.\n",
        total as f64 / seconds,
        cpu / total as f64
    );
}
