//! Shared by the benches: the sample payload, ids, percentiles, CPU time.
#![allow(dead_code)]

use std::time::Duration;

/// A systeme.io sale, the payload most benches send.
pub const SALE: &[u8] =
    include_bytes!("../../../../fixtures/systeme-automation/sale-completed.json");

pub fn uuid_like(i: usize) -> String {
    format!("00000000-0000-7000-8000-{i:012}")
}

/// The `p` quantile of `samples`, in milliseconds.
pub fn percentile(mut samples: Vec<Duration>, p: f64) -> f64 {
    samples.sort();
    let index = ((samples.len() as f64 * p).ceil() as usize).saturating_sub(1);
    samples[index.min(samples.len() - 1)].as_secs_f64() * 1000.0
}

/// The median of `values`.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// CPU time (user + system) this thread has used, in microseconds: steadier than wall
/// time on a shared machine.
pub fn thread_cpu_micros() -> i64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    let micros = |t: libc::timeval| t.tv_sec * 1_000_000 + t.tv_usec;
    micros(usage.ru_utime) + micros(usage.ru_stime)
}
