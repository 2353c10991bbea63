//! `make bench`: figures, not pass/fail. Prints
//! 1. ingest throughput and latency of durable capture beside a no-op axum handler that only
//!    reads the body, same machine, same run (the ratio is the figure), via `wrk`;
//! 2. on a store of 1,000,000 events: email lookup, contact timeline page, contact search,
//!    full-text query (p50/p99 over the API), and export throughput and peak memory.
//!
//! Medians of several runs; the machine is shared, so read ratios rather than absolutes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hookscope_core::store::db::{self, Synchronous};
use hookscope_core::store::indexer;

mod support;

use support::{SALE, median, percentile, process_cpu_micros, thread_cpu_micros};

const STORE_EVENTS: usize = 1_000_000;
const CONTACTS: usize = 50_000;

fn main() {
    let only = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if only.as_deref().is_none_or(|o| o == "ingest") {
        runtime.block_on(ingest());
    }
    if only.as_deref().is_none_or(|o| o == "store") {
        runtime.block_on(store());
    }
}

// ---- ingest ---------------------------------------------------------------------------

struct WrkRun {
    requests_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    non_2xx: u64,
}

fn wrk(url: &str, connections: usize, seconds: u64, script: &Path) -> WrkRun {
    let output = Command::new("wrk")
        .args([
            &format!("-t{}", connections.min(2)),
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-s",
            script.to_str().unwrap(),
            url,
        ])
        .output()
        .expect("wrk is installed (make bench installs it)");
    let text = String::from_utf8_lossy(&output.stdout);
    let number_after = |label: &str| -> Option<&str> {
        text.lines()
            .find(|l| l.trim_start().starts_with(label))
            .and_then(|l| l.trim_start()[label.len()..].split_whitespace().next())
    };
    let millis = |value: &str| -> f64 {
        let (number, unit) = value.split_at(
            value
                .find(|c: char| c.is_alphabetic())
                .unwrap_or(value.len()),
        );
        let n: f64 = number.parse().unwrap_or(f64::NAN);
        match unit {
            "us" => n / 1000.0,
            "ms" => n,
            "s" => n * 1000.0,
            _ => f64::NAN,
        }
    };
    if number_after("99%").is_none() {
        panic!(
            "unexpected wrk output:\n{text}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    WrkRun {
        requests_per_sec: number_after("Requests/sec:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0),
        p50_ms: number_after("50%").map(millis).unwrap_or(f64::NAN),
        p99_ms: number_after("99%").map(millis).unwrap_or(f64::NAN),
        non_2xx: number_after("Non-2xx or 3xx responses:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    }
}

async fn noop_server() -> String {
    let app = axum::Router::new().fallback(|body: Bytes| async move {
        std::hint::black_box(body.len());
        axum::Json(serde_json::json!({"ok": true}))
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/h/noop")
}

/// The durable floor: what any "2xx after a durable commit" design must at least pay.
/// axum reading the body; one SQLite writer thread; WAL, synchronous=FULL; up to 256
/// queued rows per transaction; a row of (received time, path, headers, body) with no
/// other index; 200 only after the commit.
async fn floor_server(dir: &Path) -> String {
    type Row = (i64, String, String, Bytes, tokio::sync::oneshot::Sender<()>);
    let (rows, mut queue) = tokio::sync::mpsc::channel::<Row>(4096);
    let mut conn = rusqlite::Connection::open(dir.join("floor.db")).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute_batch(
        "CREATE TABLE deliveries (received_at INTEGER, path TEXT, headers TEXT, body BLOB)",
    )
    .unwrap();
    std::thread::spawn(move || {
        while let Some(first) = queue.blocking_recv() {
            let mut batch = vec![first];
            while batch.len() < 256 {
                match queue.try_recv() {
                    Ok(row) => batch.push(row),
                    Err(_) => break,
                }
            }
            let tx = conn.transaction().unwrap();
            for (at, path, headers, body, _) in &batch {
                tx.prepare_cached("INSERT INTO deliveries VALUES (?1, ?2, ?3, ?4)")
                    .unwrap()
                    .execute((at, path, headers, &body[..]))
                    .unwrap();
            }
            tx.commit().unwrap();
            for (.., done) in batch {
                let _ = done.send(());
            }
        }
    });
    let app = axum::Router::new().fallback(
        move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: Bytes| {
            let rows = rows.clone();
            async move {
                let headers: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.to_str().unwrap_or("")))
                    .collect();
                let (done, committed) = tokio::sync::oneshot::channel();
                let row = (
                    hookscope_core::timefmt::now_micros(),
                    uri.path().to_string(),
                    serde_json::to_string(&headers).unwrap(),
                    body,
                    done,
                );
                rows.send(row).await.unwrap();
                committed.await.unwrap();
                axum::Json(serde_json::json!({"ok": true}))
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/h/floor")
}

async fn ingest() {
    let dir = tempfile::tempdir().unwrap();
    let running = support::start(dir.path(), Synchronous::Full, false, None).await;
    let noop = noop_server().await;
    let floor = floor_server(dir.path()).await;
    let script = dir.path().join("post.lua");
    let body = String::from_utf8(SALE.to_vec()).unwrap();
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\nwrk.body = [==[{body}]==]\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"
        ),
    )
    .unwrap();
    println!(
        "## Ingest: {}-byte sale payload, synchronous=FULL, wrk with 2 threads (1 for 1 sender), 5 s runs, median of 3, the three servers side by side",
        SALE.len()
    );
    println!(
        "| senders | no-op req/s | durable floor req/s | Hookscope req/s | vs floor | vs no-op | Hookscope p50 | Hookscope p99 | floor p99 |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for connections in [1usize, 8, 64] {
        let (mut noops, mut floors, mut ours, mut p50, mut p99, mut floor_p99) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        for _ in 0..3 {
            let run = |url: String| {
                let script = script.clone();
                tokio::task::spawn_blocking(move || wrk(&url, connections, 5, &script))
            };
            let a = run(noop.clone()).await.unwrap();
            let f = run(floor.clone()).await.unwrap();
            let b = run(running.webhook_url.clone()).await.unwrap();
            assert_eq!(b.non_2xx, 0, "every delivery was acknowledged");
            noops.push(a.requests_per_sec);
            floors.push(f.requests_per_sec);
            floor_p99.push(f.p99_ms);
            ours.push(b.requests_per_sec);
            p50.push(b.p50_ms);
            p99.push(b.p99_ms);
        }
        let (noop_rate, floor_rate, ours) = (median(noops), median(floors), median(ours));
        println!(
            "| {connections} | {noop_rate:.0} | {floor_rate:.0} | {ours:.0} | {:.2} | {:.2} | {:.2} ms | {:.2} ms | {:.2} ms |",
            ours / floor_rate,
            ours / noop_rate,
            median(p50),
            median(p99),
            median(floor_p99)
        );
    }
    // The indexer follows: how far behind the runs left it, and how long it took to catch up.
    let caught_up = Instant::now();
    let mut indexed = running.state.store.writer.watch_indexed();
    let behind = indexed.borrow().behind;
    let _ = indexed.wait_for(|p| p.behind == 0).await;
    println!(
        "\nThe indexer was {behind} deliveries behind at the end of the runs and caught up in {:.1} s.",
        caught_up.elapsed().as_secs_f64()
    );
    // The price of durability: the same load with commits that skip the fsync.
    let relaxed_dir = tempfile::tempdir().unwrap();
    let relaxed = support::start(relaxed_dir.path(), Synchronous::Normal, false, None).await;
    let mut relaxed_runs = Vec::new();
    for _ in 0..3 {
        let (url, script) = (relaxed.webhook_url.clone(), script.clone());
        let run = tokio::task::spawn_blocking(move || wrk(&url, 64, 5, &script))
            .await
            .unwrap();
        relaxed_runs.push(run.requests_per_sec);
    }
    println!(
        "\nWith --synchronous normal (survives a crash, not a power cut), 64 senders: {:.0} req/s.",
        median(relaxed_runs)
    );
    relaxed.stop().await;

    let stored: i64 = db::open_reader(&db::database_path(dir.path()))
        .unwrap()
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    println!("\n{stored} deliveries stored during the ingest runs.\n");
    running.stop().await;
}

// ---- store of a million ---------------------------------------------------------------

/// Generates (once, kept under target/) a store of a million events: sale-sized payloads
/// spread over CONTACTS contacts, inserted through the same code path as live captures.
fn million_store() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../target/bench-store-v3-{STORE_EVENTS}"));
    let path = db::database_path(&dir);
    let done = dir.join("complete");
    if done.exists() {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    db::ensure_data_dir(&dir).unwrap();
    let started = Instant::now();
    let mut conn = db::open_writer(&path, Synchronous::Normal).unwrap();
    hookscope_core::store::endpoints::ensure_default(&conn).unwrap();
    let types = [
        "contact.tag.added",
        "contact.optin.completed",
        "customer.sale.completed",
        "contact.page.visited",
    ];
    let start_micros = hookscope_core::timefmt::now_micros() - STORE_EVENTS as i64 * 1_000_000;
    // Stored as received, as the listener stores them...
    for chunk in 0..STORE_EVENTS / 10_000 {
        let tx = conn.transaction().unwrap();
        for i in chunk * 10_000..(chunk + 1) * 10_000 {
            let contact = i % CONTACTS;
            let kind = types[i % types.len()];
            let body = format!(
                r#"{{"type":"{kind}","data":{{"tag":{{"id":{i},"name":"Tag {}"}},"contact":{{"id":{contact},"email":"Person{contact}@Example.com","fields":{{"first_name":"Person","surname":"Number {contact}"}},"ip":null}},"note":"{}"}},"account":{{"email":"owner@example.com"}},"created_at":"2026-10-05T09:52:38+00:00"}}"#,
                i % 97,
                "x".repeat(700)
            );
            let raw = support::delivery(i, start_micros + i as i64 * 1_000_000, Bytes::from(body));
            hookscope_core::store::deliveries::insert(&tx, &raw).unwrap();
        }
        tx.commit().unwrap();
        if chunk % 10 == 9 {
            eprint!("\rstoring the deliveries: {}k", (chunk + 1) * 10);
        }
    }
    let stored = started.elapsed().as_secs_f64();
    // ...then indexed as the indexer catches up after a crash or an upgrade.
    let indexing = Instant::now();
    let cpu_before = (thread_cpu_micros(), process_cpu_micros());
    let indexed = indexer::run_to_end(&mut conn, 1 << 20, |done, _| {
        if done % 100_000 < 2_000 {
            eprint!("\rindexing: {}k", done / 1000);
        }
    })
    .unwrap();
    let seconds = indexing.elapsed().as_secs_f64();
    let deriving_cpu = (thread_cpu_micros() - cpu_before.0) as f64;
    let all_cpu = (process_cpu_micros() - cpu_before.1) as f64;
    conn.execute_batch("PRAGMA optimize; PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    drop(conn);
    std::fs::write(&done, b"").unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    let catch_up = format!(
        "Indexer catch-up on a backlog of {indexed} stored deliveries (`hookscope reindex`'s path: reading and decoding, deriving, checkpoints, each on a thread): {:.0} deliveries/s, {:.1} µs CPU each in all, {:.1} µs of it deriving ({seconds:.0} s; storing them took {stored:.0} s; {} MB).",
        indexed as f64 / seconds,
        all_cpu / indexed as f64,
        deriving_cpu / indexed as f64,
        size / 1_000_000
    );
    eprintln!("\r{catch_up}");
    std::fs::write(dir.join("catch-up.txt"), &catch_up).unwrap();
    dir
}

async fn timed(api: &reqwest::Client, base: &str, token: &str, paths: &[String]) -> (f64, f64) {
    let mut samples = Vec::with_capacity(paths.len());
    for path in paths {
        let started = Instant::now();
        let response = api
            .get(format!("{base}{path}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{path}");
        let _ = response.bytes().await.unwrap();
        samples.push(started.elapsed());
    }
    (percentile(samples.clone(), 0.5), percentile(samples, 0.99))
}

async fn store() {
    let dir = million_store();
    // Figures are the store's, not the disk's: a first run after a build that evicted the
    // file from the page cache measured events by email at 9 ms p50 instead of 0.7 ms,
    // and the JSON export at 147 MB/s instead of 324.
    let mut file = std::fs::File::open(db::database_path(&dir)).unwrap();
    let warmed = std::io::copy(&mut file, &mut std::io::sink()).unwrap();
    let running = support::start(&dir, Synchronous::Full, false, None).await;
    let (base, token) = running.ui_url.split_once("/?token=").unwrap();
    let api = reqwest::Client::new();
    let mut rng = 0x2545F4914F6CDD1Du64;
    let mut random = |n: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % n as u64) as usize
    };
    let emails: Vec<String> = (0..500)
        .map(|_| format!("PERSON{}@example.COM", random(CONTACTS)))
        .collect();
    let lookups: Vec<String> = emails
        .iter()
        .map(|e| format!("/api/events?email={}&limit=50", e.replace('@', "%40")))
        .collect();
    let timelines: Vec<String> = emails
        .iter()
        .map(|e| {
            format!(
                "/api/events?email={}&limit=50&before=9999999999999999:0",
                e.replace('@', "%40")
            )
        })
        .collect();
    let searches: Vec<String> = (0..200)
        .map(|_| format!("/api/contacts?q=person{}&limit=50", random(CONTACTS)))
        .collect();
    let fts: Vec<String> = (0..200)
        .map(|_| format!("/api/events?q=tag%20{}&limit=50", random(97)))
        .collect();
    let typed: Vec<String> = (0..200)
        .map(|_| "/api/events?type=customer.sale.completed&limit=50".to_string())
        .collect();
    let first_page: Vec<String> = (0..200)
        .map(|_| "/api/events?limit=50".to_string())
        .collect();
    let status: Vec<String> = (0..200).map(|_| "/api/status".to_string()).collect();

    println!(
        "## Store of {STORE_EVENTS} events, {CONTACTS} contacts (API over loopback, one client; the {} MB file read once before timing)",
        warmed / 1_000_000
    );
    println!("| query | p50 | p99 |");
    println!("|---|---:|---:|");
    for (name, paths) in [
        ("events by email (any case), first page of 50", &lookups),
        ("contact timeline page with cursor", &timelines),
        ("contact search, substring of email or name", &searches),
        ("full-text query, 2 words", &fts),
        ("type filter, first page", &typed),
        ("all events, first page", &first_page),
        ("status with its counts (the window's header)", &status),
    ] {
        let _ = timed(&api, base, token, &paths[..10]).await; // warm
        let (p50, p99) = timed(&api, base, token, paths).await;
        println!("| {name} | {p50:.2} ms | {p99:.2} ms |");
    }
    running.stop().await;

    // Export in a child process so its peak memory is its own.
    println!("\n## Export (hookscope export, child process)");
    println!("| events | format | MB | seconds | MB/s | peak RSS |");
    println!("|---:|---|---:|---:|---:|---:|");
    for (label, args) in [
        (
            "10,000",
            vec!["--since".to_string(), since_for(&dir, 10_000)],
        ),
        ("1,000,000", vec![]),
    ] {
        for format in ["json", "ndjson"] {
            let out = dir.join(format!("export.{format}"));
            let started = Instant::now();
            let mut command = Command::new(env!("CARGO_BIN_EXE_hookscope"));
            command
                .args([
                    "export",
                    "--data-dir",
                    dir.to_str().unwrap(),
                    "--format",
                    format,
                    "-o",
                    out.to_str().unwrap(),
                ])
                .args(&args)
                .stderr(std::process::Stdio::null());
            let (status, peak_kb, _) = run_measured(&mut command);
            assert!(status.success());
            let seconds = started.elapsed().as_secs_f64();
            let megabytes = std::fs::metadata(&out).unwrap().len() as f64 / 1e6;
            println!(
                "| {label} | {format} | {megabytes:.0} | {seconds:.1} | {:.0} | {:.1} MB |",
                megabytes / seconds,
                peak_kb as f64 / 1024.0
            );
            let _ = std::fs::remove_file(out);
        }
    }
    forget_on_the_million(&dir);
    std::io::stdout().flush().unwrap();
}

/// What forgetting one person costs on the million: a copy of the store, `hookscope
/// forget` in a child process (finding their deliveries by contact and by reading every
/// stored delivery for the address, erasing, scrubbing).
fn forget_on_the_million(dir: &Path) {
    let copy = tempfile::tempdir_in(dir.parent().unwrap()).unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("hookscope.db")
            || path.to_string_lossy().contains("hookscope-derived.db")
        {
            std::fs::copy(&path, copy.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    println!(
        "\n## Forgetting one person on the store of {STORE_EVENTS} (hookscope forget, child process)"
    );
    println!("| person | seconds | peak RSS | said |");
    println!("|---|---:|---:|---|");
    for contact in [123, 40_000] {
        let email = format!("person{contact}@example.com");
        let started = Instant::now();
        let mut command = Command::new(env!("CARGO_BIN_EXE_hookscope"));
        command
            .args(["forget", &email, "--yes", "--data-dir"])
            .arg(copy.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        let (status, peak_kb, said) = run_measured(&mut command);
        assert!(status.success(), "hookscope forget succeeds");
        println!(
            "| {email} | {:.1} | {:.1} MB | {} |",
            started.elapsed().as_secs_f64(),
            peak_kb as f64 / 1024.0,
            said.trim()
        );
    }
}

fn since_for(dir: &Path, last: usize) -> String {
    let conn = db::open_reader(&db::database_path(dir)).unwrap();
    let micros: i64 = conn
        .query_row(
            "SELECT received_at FROM events ORDER BY received_at DESC LIMIT 1 OFFSET ?1",
            [last as i64 - 1],
            |r| r.get(0),
        )
        .unwrap();
    hookscope_core::timefmt::format_micros(micros)
}

/// Runs a child and returns its exit status, its peak resident memory (KiB) and what it
/// wrote to a piped stdout (a line or two: the pipe never fills). The peak is the kernel's
/// high-water mark of the child's own memory (VmHWM), read every 5 ms while it runs:
/// wait4's ru_maxrss would not do, as it starts from this process's own peak (the child
/// is spawned from it), which is what every row showed.
fn run_measured(command: &mut Command) -> (std::process::ExitStatus, u64, String) {
    let mut child = command.spawn().unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        let high_water = std::fs::read_to_string(&status_file).ok().and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        });
        peak_kb = peak_kb.max(high_water.unwrap_or(0));
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut said = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        std::io::Read::read_to_string(&mut stdout, &mut said).unwrap();
    }
    (status, peak_kb, said)
}
