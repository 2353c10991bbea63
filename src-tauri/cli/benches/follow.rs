//! `make bench`: following a relay on loopback. Prints
//! 1. live follow latency: from the relay's acknowledgement of a delivery to its summary on
//!    the follower's live stream (pulled, stored, indexed, published), one sender at a
//!    time and 8 senders at once;
//! 2. catching up: deliveries per second a follower pulls, stores and indexes after the
//!    relay received them while it was off.
//!
//! Both servers run in this process (two cores shared): read medians, not absolutes.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hookscope_core::app;
use hookscope_core::delivery::follow::FollowTarget;
use hookscope_core::store::db::Synchronous;

mod support;

use support::{SALE, percentile};

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(follow());
}

async fn start(data_dir: &Path, sync: bool, follow: Option<FollowTarget>) -> app::Running {
    support::start(data_dir, Synchronous::Full, sync, follow).await
}

/// When each event id showed on the follower's live stream.
type Seen = Arc<Mutex<HashMap<String, Instant>>>;

fn watch_stream(follower: &app::Running) -> Seen {
    let seen: Seen = Arc::default();
    let mut published = follower.state.store.published.subscribe();
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok(meta) = published.recv().await {
            record
                .lock()
                .unwrap()
                .insert(meta.id.clone(), Instant::now());
        }
    });
    seen
}

/// Posts one delivery; returns its id and when it was acknowledged.
async fn post(client: &reqwest::Client, url: &str) -> (String, Instant) {
    let answer = client.post(url).body(SALE).send().await.unwrap();
    assert!(answer.status().is_success());
    let acked = Instant::now();
    let id = answer.headers()["x-hookscope-event"]
        .to_str()
        .unwrap()
        .to_string();
    (id, acked)
}

/// `wait`, or a panic saying what did not happen within `deadline`: a bench never hangs.
async fn within<T>(deadline: Duration, wait: impl Future<Output = T>, what: &str) -> T {
    tokio::time::timeout(deadline, wait)
        .await
        .unwrap_or_else(|_| panic!("{what} within {deadline:?}"))
}

/// Waits until every id is seen; returns the delays from acknowledgement.
async fn delays(seen: &Seen, acks: &[(String, Instant)]) -> Vec<Duration> {
    let started = Instant::now();
    loop {
        {
            let seen = seen.lock().unwrap();
            if acks.iter().all(|(id, _)| seen.contains_key(id)) {
                return acks
                    .iter()
                    .map(|(id, acked)| seen[id].saturating_duration_since(*acked))
                    .collect();
            }
        }
        assert!(started.elapsed() < Duration::from_secs(120), "all arrive");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn follow() {
    let relay_dir = tempfile::tempdir().unwrap();
    let follower_dir = tempfile::tempdir().unwrap();
    let relay = start(relay_dir.path(), true, None).await;
    let target = FollowTarget::new(
        relay.sync_url.as_deref().unwrap(),
        relay.sync_token.as_deref().unwrap(),
    )
    .unwrap();
    let follower = start(follower_dir.path(), false, Some(target.clone())).await;
    let mut view = follower.state.follow.watch_view();
    within(
        Duration::from_secs(30),
        view.wait_for(|v| v.state == "following"),
        "the follower follows",
    )
    .await
    .unwrap();
    let seen = watch_stream(&follower);
    let client = reqwest::Client::new();
    let url = relay.webhook_url.clone();

    println!("## Live follow on loopback: relay acknowledgement → follower's live stream");
    println!("| senders | deliveries | p50 | p99 | max |");
    println!("|---:|---:|---:|---:|---:|");
    let mut acks = Vec::new();
    for _ in 0..300 {
        acks.push(post(&client, &url).await);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let one = delays(&seen, &acks).await;
    print_row(1, one);
    let mut senders = Vec::new();
    for _ in 0..8 {
        let (client, url) = (client.clone(), url.clone());
        senders.push(tokio::spawn(async move {
            let mut acks = Vec::new();
            for _ in 0..250 {
                acks.push(post(&client, &url).await);
            }
            acks
        }));
    }
    let mut acks = Vec::new();
    for sender in senders {
        acks.extend(sender.await.unwrap());
    }
    let eight = delays(&seen, &acks).await;
    print_row(8, eight);

    // One large delivery on the live feed: its line is read in pieces, each searched once
    // for its end (was the whole pending line at every piece: quadratic).
    for (label, size) in [("1 MiB", 1 << 20), ("4 MiB", 4 << 20)] {
        let body: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
        let process = cpu_seconds();
        let answer = client
            .post(&url)
            .header("content-type", "text/plain")
            .body(body)
            .send()
            .await
            .unwrap();
        let acked = Instant::now();
        let id = answer.headers()["x-hookscope-event"]
            .to_str()
            .unwrap()
            .to_string();
        loop {
            if seen.lock().unwrap().contains_key(&id) {
                break;
            }
            assert!(
                acked.elapsed() < Duration::from_secs(60),
                "the {label} delivery arrives"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        println!(
            "A {label} delivery on the live feed: on the follower's stream {:.0} ms after the relay's acknowledgement ({:.2} s of CPU for both servers).",
            acked.elapsed().as_secs_f64() * 1000.0,
            cpu_seconds() - process,
        );
    }

    // The follower is off while 5,000 arrive; then it catches up.
    follower.stop().await;
    const AWAY: usize = 5_000;
    let mut senders = Vec::new();
    for _ in 0..16 {
        let (client, url) = (client.clone(), url.clone());
        senders.push(tokio::spawn(async move {
            for _ in 0..AWAY / 16 {
                post(&client, &url).await;
            }
        }));
    }
    for sender in senders {
        sender.await.unwrap();
    }
    let total = 300 + 8 * 250 + AWAY / 16 * 16;
    let started = Instant::now();
    let follower = start(follower_dir.path(), false, None).await;
    let mut indexed = follower.state.store.writer.watch_indexed();
    let mut committed = follower.state.store.writer.watch_committed();
    within(
        Duration::from_secs(120),
        committed.wait_for(|&seq| seq >= total as i64),
        "the follower stores what it missed",
    )
    .await
    .unwrap();
    let stored = started.elapsed();
    within(
        Duration::from_secs(120),
        indexed.wait_for(|p| p.through >= total as i64),
        "the follower indexes what it missed",
    )
    .await
    .unwrap();
    let done = started.elapsed();
    println!(
        "\nCatching up {} deliveries received while the follower was off: stored in {:.1} s ({:.0}/s), indexed in {:.1} s ({:.0}/s).\n",
        AWAY / 16 * 16,
        stored.as_secs_f64(),
        (AWAY / 16 * 16) as f64 / stored.as_secs_f64(),
        done.as_secs_f64(),
        (AWAY / 16 * 16) as f64 / done.as_secs_f64(),
    );
    follower.stop().await;
    relay.stop().await;
}

fn print_row(senders: usize, delays: Vec<Duration>) {
    let count = delays.len();
    let max = delays.iter().max().unwrap().as_secs_f64() * 1000.0;
    println!(
        "| {senders} | {count} | {:.1} ms | {:.1} ms | {max:.1} ms |",
        percentile(delays.clone(), 0.5),
        percentile(delays, 0.99),
    );
}

/// CPU time this process has used so far (both servers run in it).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}
