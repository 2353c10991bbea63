//! Shared by the benches: the sample payload, ids, percentiles, CPU time.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use hookscope_core::app::{self, ServeOptions};
use hookscope_core::capture::RawDelivery;
use hookscope_core::delivery::follow::FollowTarget;
use hookscope_core::store::db::Synchronous;

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
    cpu_micros(libc::RUSAGE_THREAD)
}

/// CPU time (user + system) of every thread of this process so far, in µs.
pub fn process_cpu_micros() -> i64 {
    cpu_micros(libc::RUSAGE_SELF)
}

fn cpu_micros(who: libc::c_int) -> i64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we own.
    unsafe { libc::getrusage(who, &mut usage) };
    let micros = |t: libc::timeval| t.tv_sec * 1_000_000 + t.tv_usec;
    micros(usage.ru_utime) + micros(usage.ru_stime)
}

/// Hookscope on free ports over `data_dir`, no tunnel; a relay with `sync`, a follower
/// with `follow`.
pub async fn start(
    data_dir: &Path,
    synchronous: Synchronous,
    sync: bool,
    follow: Option<FollowTarget>,
) -> app::Running {
    app::start(ServeOptions {
        data_dir: data_dir.to_path_buf(),
        ingest: "127.0.0.1:0".parse().unwrap(),
        ui: "127.0.0.1:0".parse().unwrap(),
        max_body: app::DEFAULT_MAX_BODY,
        synchronous,
        tunnel: Some(hookscope_core::tunnel::TunnelChoice::Off),
        tunnel_options: Default::default(),
        proxy: None,
        systeme_api: None,
        forward: Default::default(),
        ingest_limits: Default::default(),
        ui_limits: hookscope_core::http::listener::ListenerLimits::ui_default(),
        sync: sync.then(|| "127.0.0.1:0".parse().unwrap()),
        follow,
        sync_timing: Default::default(),
        alert_webhook: None,
        alert_retry: Default::default(),
        alert_check_every: app::DEFAULT_ALERT_CHECK_EVERY,
        probe_timing: Default::default(),
    })
    .await
    .unwrap()
}

/// Delivery `i` as stored, received at `received_at` (µs), with `body`.
pub fn delivery(i: usize, received_at: i64, body: Bytes) -> RawDelivery {
    RawDelivery {
        id: uuid_like(i),
        received_at,
        endpoint_id: "ep_bench".into(),
        endpoint_name: "Bench".into(),
        method: "POST".into(),
        path: "/h/bench".into(),
        query: None,
        headers: vec![("content-type".into(), "application/json".into())],
        remote_addr: Some("127.0.0.1:40000".into()),
        client_ip: Some("127.0.0.1".into()),
        via_tunnel: false,
        body,
    }
}
