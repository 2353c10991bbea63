//! Memory is bounded by design, whatever senders do. Against a real `hookscope serve`
//! process: 48 connections hold near-limit bodies open while 32 small compressed bodies
//! that each inflate to a 10 MB JSON array arrive, and ordinary deliveries keep coming.
//! The process's peak resident memory (VmHWM) stays under 512 MiB; ordinary deliveries
//! are all taken; every big one is answered (stored, or 503 with Retry-After).

use crate::support;

use std::io::Write;
use std::time::{Duration, Instant};

use support::Serve;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PEAK_LIMIT_MIB: u64 = 512;
const HOLDERS: usize = 48;
const COMPRESSED: usize = 32;
const ORDINARY: usize = 20;
/// Just under the default 10 MiB body limit.
const NEAR_LIMIT: usize = 10 * 1024 * 1024 - 4096;
/// What a holder sends before it pauses.
const HELD: usize = 9 * 1024 * 1024;

fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status");
    kib / 1024
}

/// A deflate body of about 10 KB that inflates to a 10 MB JSON array of `0,` (5M values).
fn deflate_bomb() -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(b"[").unwrap();
    let block = "0,".repeat(500_000);
    for _ in 0..10 {
        encoder.write_all(block.as_bytes()).unwrap();
    }
    encoder.write_all(b"0]").unwrap();
    encoder.finish().unwrap()
}

/// The status line's code of an answer, and whether it says when to retry.
async fn read_answer(stream: &mut TcpStream) -> Option<(u16, bool)> {
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
        }
    }
    let text = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    let code = text.split(' ').nth(1)?.parse().ok()?;
    Some((code, text.contains("retry-after:")))
}

fn head(url: &url::Url, length: usize, extra: &str) -> Vec<u8> {
    format!(
        "POST {} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n{extra}content-length: {length}\r\nconnection: close\r\n\r\n",
        url.path(),
        url.host_str().unwrap()
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_stays_bounded_under_compressed_bodies_and_held_connections() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path());
    let pid = serve.child.id();
    let url = url::Url::parse(&serve.webhook_url).unwrap();
    let addr = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let before = peak_rss_mib(pid);

    // Holders: each sends 9 MiB of a near-limit body, then trickles a byte now and then
    // (so no timeout frees it) until told to finish.
    let (release, released) = tokio::sync::watch::channel(false);
    let mut holders = Vec::new();
    let (held_tx, mut held_rx) = tokio::sync::mpsc::channel::<()>(HOLDERS);
    for _ in 0..HOLDERS {
        let (addr, url, mut released, held_tx) =
            (addr.clone(), url.clone(), released.clone(), held_tx.clone());
        holders.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(&addr).await.unwrap();
            let block = vec![b' '; 64 * 1024];
            let mut sent = 0;
            let mut refused = stream.write_all(&head(&url, NEAR_LIMIT, "")).await.is_err();
            while !refused && sent < HELD {
                refused = stream.write_all(&block).await.is_err();
                sent += block.len();
            }
            let _ = held_tx.send(()).await;
            while !refused && !*released.borrow() {
                tokio::select! {
                    _ = released.changed() => {}
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {
                        refused = stream.write_all(b" ").await.is_err();
                        sent += 1;
                    }
                }
            }
            if !refused {
                let rest = vec![b' '; NEAR_LIMIT - sent - 2];
                let _ = stream.write_all(b"[").await;
                let _ = stream.write_all(&rest).await;
                let _ = stream.write_all(b"]").await;
            }
            read_answer(&mut stream).await
        }));
    }
    for _ in 0..HOLDERS {
        tokio::time::timeout(Duration::from_secs(120), held_rx.recv())
            .await
            .expect("every holder sent its share or was turned away");
    }
    let holding = peak_rss_mib(pid);

    // Then the compressed bodies, all at once, with ordinary deliveries beside them.
    let bomb = deflate_bomb();
    assert!(bomb.len() < 20_000, "a small body: {} bytes", bomb.len());
    let started = Instant::now();
    let compressed: Vec<_> = (0..COMPRESSED)
        .map(|_| {
            let (addr, url, bomb) = (addr.clone(), url.clone(), bomb.clone());
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(&addr).await.unwrap();
                let mut request = head(&url, bomb.len(), "content-encoding: deflate\r\n");
                request.extend_from_slice(&bomb);
                stream.write_all(&request).await.unwrap();
                read_answer(&mut stream).await
            })
        })
        .collect();
    let http = reqwest::Client::new();
    let sale =
        std::fs::read(support::fixtures().join("systeme-automation/sale-completed.json")).unwrap();
    let mut ordinary = Vec::new();
    for _ in 0..ORDINARY {
        let answer = http
            .post(&serve.webhook_url)
            .header("content-type", "application/json")
            .body(sale.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(
            answer.status(),
            200,
            "ordinary deliveries are taken meanwhile"
        );
        let ack: serde_json::Value = answer.json().await.unwrap();
        ordinary.push(ack["id"].as_str().unwrap().to_string());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut compressed_codes = Vec::new();
    for task in compressed {
        let (code, retry_after) = task
            .await
            .unwrap()
            .expect("each compressed body is answered");
        assert!(
            code == 200 || (code == 503 && retry_after),
            "stored, or 503 with Retry-After: {code}"
        );
        compressed_codes.push(code);
    }
    let compressed_took = started.elapsed();
    let peak = peak_rss_mib(pid);

    release.send_replace(true);
    let mut holder_codes = Vec::new();
    for task in holders {
        holder_codes.push(task.await.unwrap().map_or(0, |(code, _)| code));
    }
    let count = |codes: &[u16], code| codes.iter().filter(|c| **c == code).count();
    println!(
        "peak RSS: {before} MiB at start, {holding} MiB with {HOLDERS} bodies held, {peak} MiB after {COMPRESSED} compressed bodies ({:.1} s); holders: {} stored, {} turned away (503); compressed: {} stored, {} turned away",
        compressed_took.as_secs_f64(),
        count(&holder_codes, 200),
        count(&holder_codes, 503),
        count(&compressed_codes, 200),
        count(&compressed_codes, 503),
    );
    assert!(
        peak < PEAK_LIMIT_MIB,
        "peak resident memory {peak} MiB stays under {PEAK_LIMIT_MIB} MiB"
    );
    assert!(
        count(&holder_codes, 503) > 0,
        "the memory budget turned some held bodies away: {holder_codes:?}"
    );
    assert!(
        count(&compressed_codes, 200) > 0,
        "compressed bodies are still stored, a few at a time"
    );
    for id in &ordinary {
        let answer = http
            .get(format!("{}/api/events/{id}/raw", serve.ui_base))
            .bearer_auth(&serve.token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            answer.bytes().await.unwrap()[..],
            sale[..],
            "stored byte for byte"
        );
    }
}

/// A relay (`--sync`) and the sync URL and token it prints.
fn start_relay(data_dir: &std::path::Path) -> (Serve, String, String) {
    let serve = Serve::start_with(
        data_dir,
        &[("HOOKSCOPE_SYNC", std::path::Path::new("127.0.0.1:0"))],
    );
    let next = || {
        serve
            .lines
            .recv_timeout(Duration::from_secs(20))
            .expect("the relay prints its sync URL and token")
    };
    let url = next().strip_prefix("Sync URL: ").unwrap().to_string();
    let token = next().strip_prefix("Sync token: ").unwrap().to_string();
    (serve, url, token)
}

const RELAY_PEAK_LIMIT_MIB: u64 = 256;
const SLOW_READERS: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_relay_stays_bounded_with_slow_readers_and_near_limit_deliveries_of_control_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (serve, sync_url, token) = start_relay(dir.path());
    let pid = serve.child.id();
    // Bodies of control bytes just under the limit: escaped as text, each byte is six.
    let http = reqwest::Client::new();
    for fill in [1u8, 2, 3, 31, 30, 29] {
        let answer = http
            .post(&serve.webhook_url)
            .header("content-type", "text/plain")
            .body(vec![fill; NEAR_LIMIT])
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
    }
    let stored = peak_rss_mib(pid);
    // Readers that ask for everything and never read: half the live feed, half pages.
    let addr = sync_url.trim_start_matches("http://").to_string();
    let mut readers = Vec::new();
    for n in 0..SLOW_READERS {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        let path = if n % 2 == 0 {
            "/sync/v1/live?after=0"
        } else {
            "/sync/v1/deliveries?after=0&limit=1000"
        };
        stream
            .write_all(
                format!(
                    "GET {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\r\n"
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        readers.push(stream);
    }
    // Time for every reader's answer to be made as far as the relay goes with it.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let peak = peak_rss_mib(pid);
    // A reader that reads gets its page meanwhile: the others only wait for room. A page
    // stops after 8 MiB of bodies, with one delivery at least.
    let mut reader = TcpStream::connect(&addr).await.unwrap();
    reader
        .write_all(
            format!("GET /sync/v1/deliveries?after=0 HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\nconnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut got = Vec::new();
    let read_all =
        tokio::time::timeout(Duration::from_secs(60), reader.read_to_end(&mut got)).await;
    assert!(
        read_all.is_ok(),
        "a page is read to its end while the others hold theirs"
    );
    let bodies = got.windows(14).filter(|w| w == b"\"body_base64\":").count();
    assert_eq!(
        bodies, 1,
        "one near-limit delivery, as base64 (4/3 of it, not six times)"
    );
    assert!(
        got.len() < NEAR_LIMIT / 3 * 4 + 1024 * 1024,
        "{} bytes",
        got.len()
    );
    drop(readers);
    println!(
        "relay peak RSS: {stored} MiB with six near-limit bodies stored, {peak} MiB with {SLOW_READERS} readers that do not read"
    );
    assert!(
        peak < RELAY_PEAK_LIMIT_MIB,
        "the relay's peak resident memory {peak} MiB stays under {RELAY_PEAK_LIMIT_MIB} MiB"
    );
}
