//! A soak: `hookscope serve` as a process, fed at a steady rate while UI readers query it,
//! an export runs again and again, and live-stream clients stop reading. Nothing may fail,
//! the rate must hold, and the server's memory must level off.
//!
//! `HOOKSCOPE_SOAK_SECONDS` sets the length (`make soak`: 600 s). `make test` leaves it out.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use crate::support;

use support::Serve;

/// Deliveries per second, spread over the senders.
const RATE: u64 = 200;
const SENDERS: u64 = 16;

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

fn delivery(sender: u64, n: u64) -> String {
    format!(
        r#"{{"type":"customer.sale.completed","data":{{"customer":{{"id":{sender},"email":"soak{}@example.com","fields":{{"first_name":"Soak"}}}},"offer_price_plan":{{"id":7,"name":"Plan {n}","amount":4700,"currency":"eur"}},"order":{{"id":{n}}}}},"created_at":"2026-11-28T10:00:00+00:00"}}"#,
        (sender * 1000 + n) % 500
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: `make soak` runs it"]
async fn steady_load_with_readers_an_export_and_stalled_streams() {
    let seconds: u64 = std::env::var("HOOKSCOPE_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let server = Serve::start(dir.path());
    let pid = server.child.id();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let running = Arc::new(AtomicBool::new(true));
    let ui_host = server.ui_base.trim_start_matches("http://").to_string();

    // Live-stream clients that subscribe and then never read a byte.
    let mut stalled = Vec::new();
    for _ in 0..4 {
        // A small receive buffer, so the server's side fills within seconds.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut socket = socket.connect(ui_host.parse().unwrap()).await.unwrap();
        let request = format!(
            "GET /api/stream HTTP/1.1\r\nhost: {ui_host}\r\nauthorization: Bearer {}\r\n\r\n",
            server.token
        );
        socket.write_all(request.as_bytes()).await.unwrap();
        stalled.push(socket);
    }
    // One stream client that reads: it must keep hearing about captures.
    let heard = Arc::new(AtomicU64::new(0));
    let listener = {
        let (heard, running) = (heard.clone(), running.clone());
        // No overall timeout: this response lasts the whole soak.
        let request = reqwest::Client::new()
            .get(format!("{}/api/stream", server.ui_base))
            .bearer_auth(&server.token);
        tokio::spawn(async move {
            let mut stream = request.send().await.unwrap();
            while running.load(Ordering::Relaxed) {
                match tokio::time::timeout(Duration::from_secs(2), stream.chunk()).await {
                    Ok(Ok(Some(chunk))) => {
                        let n = chunk.windows(14).filter(|w| w == b"event: capture").count();
                        heard.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    Ok(Ok(None)) => panic!("the live stream ended"),
                    Ok(Err(error)) => panic!("the live stream failed: {error}"),
                    Err(_) => {}
                }
            }
        })
    };

    // Senders at a steady pace.
    let mut senders = Vec::new();
    for sender in 0..SENDERS {
        let (http, url, running) = (http.clone(), server.webhook_url.clone(), running.clone());
        senders.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 * SENDERS / RATE));
            // A slow answer is made up for: the rate is the target, not a ceiling.
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut latencies = Vec::new();
            let mut n = 0;
            while running.load(Ordering::Relaxed) {
                tick.tick().await;
                let started = Instant::now();
                let response = http
                    .post(&url)
                    .body(delivery(sender, n))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200, "delivery {sender}/{n}");
                latencies.push(started.elapsed());
                n += 1;
            }
            latencies
        }));
    }
    // UI readers: what the window asks for, again and again.
    let mut readers = Vec::new();
    for reader in 0..3u64 {
        let (http, base, token, running) = (
            http.clone(),
            server.ui_base.clone(),
            server.token.clone(),
            running.clone(),
        );
        readers.push(tokio::spawn(async move {
            let paths = [
                "/api/events?limit=100".to_string(),
                "/api/contacts?limit=100".to_string(),
                format!("/api/events?email=SOAK{}%40example.com", reader * 7),
                "/api/events?q=Plan&limit=50".to_string(),
                // Sender 0's first deliveries: there before the readers start.
                format!("/api/contacts/soak{reader}%40example.com"),
                "/api/status".to_string(),
                "/api/funnels".to_string(),
            ];
            tokio::time::sleep(Duration::from_secs(1)).await;
            let mut reads = 0u64;
            while running.load(Ordering::Relaxed) {
                for path in &paths {
                    let response = http
                        .get(format!("{base}{path}"))
                        .bearer_auth(&token)
                        .send()
                        .await
                        .unwrap();
                    assert!(
                        response.status().is_success(),
                        "GET {path}: {}",
                        response.status()
                    );
                    response.bytes().await.unwrap();
                    reads += 1;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            reads
        }));
    }
    // Exports, one after the other, read to the end.
    let exporter = {
        // An export of a large store may take longer than the other requests' limit.
        let (http, base, token, running) = (
            reqwest::Client::new(),
            server.ui_base.clone(),
            server.token.clone(),
            running.clone(),
        );
        tokio::spawn(async move {
            let (mut exports, mut bytes) = (0u64, 0u64);
            while running.load(Ordering::Relaxed) {
                let mut response = http
                    .get(format!("{base}/api/export?format=ndjson"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                while let Some(chunk) = response.chunk().await.unwrap() {
                    bytes += chunk.len() as u64;
                }
                exports += 1;
            }
            (exports, bytes)
        })
    };

    // Memory, once a second; SQLite's share of it every tenth of the run.
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut sqlite_mib = Vec::new();
    while started.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        samples.push(rss_kib(pid));
        if (samples.len() as u64).is_multiple_of(seconds.div_ceil(10).max(1)) {
            let status = server.api_json("/api/status").await;
            sqlite_mib.push(status["sqlite_memory_bytes"].as_i64().unwrap() >> 20);
        }
    }
    running.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies = Vec::new();
    for sender in senders {
        latencies.extend(sender.await.unwrap());
    }
    let reads: u64 = futures_util::future::join_all(readers)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .sum();
    let (exports, exported) = exporter.await.unwrap();
    listener.await.unwrap();
    latencies.sort();
    let delivered = latencies.len() as f64;
    let quarter = samples.len().div_ceil(4);
    // Warm-up (caches, pools, allocator arenas) is the first quarter: level is judged after.
    let early = *samples[quarter..2 * quarter].iter().max().unwrap();
    let series: Vec<u64> = (1..=10)
        .map(|tenth| samples[(samples.len() * tenth / 10).saturating_sub(1)] >> 10)
        .collect();
    let late = *samples[samples.len() - quarter..].iter().max().unwrap();
    let peak = *samples.iter().max().unwrap();
    println!(
        "soak {seconds} s: {delivered} deliveries ({:.0}/s, target {RATE}/s), latency p50 {:?} p99 {:?} max {:?}; {reads} UI reads; {exports} exports ({} MiB); live stream heard {}; 4 stalled stream clients; server RSS second quarter {} MiB, last quarter {} MiB, peak {} MiB, by tenths {series:?} MiB (SQLite's allocations {sqlite_mib:?} MiB)",
        delivered / elapsed,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().unwrap(),
        exported >> 20,
        heard.load(Ordering::Relaxed),
        early >> 10,
        late >> 10,
        peak >> 10,
    );
    assert!(
        delivered / elapsed >= RATE as f64 * 0.9,
        "the rate held: {:.0}/s",
        delivered / elapsed
    );
    assert!(exports >= 1 && reads >= 10, "readers and exports ran");
    assert!(
        heard.load(Ordering::Relaxed) > 0,
        "the reading stream client kept hearing captures"
    );
    assert!(
        percentile(&latencies, 0.99) < Duration::from_secs(2),
        "stalled stream clients and readers did not hold up ingest"
    );
    // Level, not growing: the last quarter within 64 MiB of the second, and under 512 MiB.
    assert!(
        late <= early + 64 * 1024 && peak < 512 * 1024,
        "memory levels off: second quarter {} MiB, last {} MiB, peak {} MiB",
        early >> 10,
        late >> 10,
        peak >> 10
    );
    drop(stalled);
}
