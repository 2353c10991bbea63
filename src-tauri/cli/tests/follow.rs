//! A relay and a follower, two real `hookscope serve` processes on loopback: what the
//! relay received while the follower was off arrives, in order and byte for byte, and is
//! derived the same; the sync listener wants its token and serves nothing but sync; a
//! relay killed mid-sync comes back and the follower resumes with nothing lost or twice.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::types::Value as SqlValue;
use serde_json::{Value, json};

use crate::support;

use support::{BIN, Serve, fixtures};

/// A relay (`--sync`) and the two lines it prints for followers.
struct Relay {
    serve: Serve,
    sync_url: String,
    sync_token: String,
}

fn start_relay(data_dir: &Path, sync_addr: &str) -> Relay {
    let serve = Serve::start_with(data_dir, &[("HOOKSCOPE_SYNC", Path::new(sync_addr))]);
    let next = || {
        serve
            .lines
            .recv_timeout(Duration::from_secs(20))
            .expect("the relay prints its sync URL and token")
    };
    let url_line = next();
    let token_line = next();
    let sync_url = url_line
        .strip_prefix("Sync URL: ")
        .unwrap_or_else(|| panic!("the relay prints `Sync URL:`: {url_line:?}"))
        .to_string();
    let sync_token = token_line
        .strip_prefix("Sync token: ")
        .unwrap_or_else(|| panic!("then `Sync token:`: {token_line:?}"))
        .to_string();
    Relay {
        serve,
        sync_url,
        sync_token,
    }
}

fn start_follower(data_dir: &Path, relay: Option<&Relay>) -> Serve {
    match relay {
        Some(relay) => Serve::start_with(
            data_dir,
            &[
                ("HOOKSCOPE_FOLLOW", Path::new(&relay.sync_url)),
                ("HOOKSCOPE_FOLLOW_TOKEN", Path::new(&relay.sync_token)),
            ],
        ),
        // Remembered from the last start.
        None => Serve::start(data_dir),
    }
}

fn stop(serve: &mut Serve) {
    serve.signal("TERM");
    assert!(
        serve.wait(Duration::from_secs(20)).success(),
        "a clean stop"
    );
}

/// A body and its headers, as sent.
type Sample = (Vec<u8>, Vec<(String, String)>);
/// What the developer's handler received: each request's path and query, and body.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// Every fixture: its body and headers, exactly as on disk.
fn fixture_deliveries() -> Vec<Sample> {
    let mut found = Vec::new();
    for family in ["systeme-automation", "systeme-settings", "generic"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures().join(family))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e != "headers"))
            .collect();
        files.sort();
        for file in files {
            let headers = std::fs::read_to_string(file.with_extension("headers"))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
                .collect();
            found.push((std::fs::read(&file).unwrap(), headers));
        }
    }
    assert!(found.len() > 20, "the fixtures are there");
    found
}

/// Posts `count` deliveries to `webhook_url` (one after another: the relay's order is
/// this order), cycling through every fixture and a few bodies of every kind.
async fn send(webhook_url: &str, count: usize, from: usize) {
    let mut samples = fixture_deliveries();
    samples.push((b"  {\"spaced\": true}\n".to_vec(), vec![]));
    samples.push((vec![0, 159, 146, 150, 255, b'\n', b'"'], vec![]));
    samples.push((Vec::new(), vec![]));
    let client = reqwest::Client::new();
    for n in from..from + count {
        let (body, headers) = &samples[n % samples.len()];
        let mut request = client
            .post(format!("{webhook_url}/orders/{n}?n={n}"))
            .body(body.clone());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let answer = request.send().await.unwrap();
        assert!(answer.status().is_success(), "the relay acknowledges #{n}");
    }
}

/// Waits until the server has indexed `count` events.
async fn wait_for_events(serve: &Serve, count: i64, within: Duration) -> Value {
    let started = Instant::now();
    loop {
        let status = serve.api_json("/api/status").await;
        if status["events"] == count && status["indexing"]["behind"] == 0 {
            return status;
        }
        assert!(
            started.elapsed() < within,
            "{count} events within {within:?}; now {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn open(data_dir: &Path) -> rusqlite::Connection {
    hookscope_core::store::db::open_reader(&data_dir.join("hookscope.db")).unwrap()
}

/// Every row of `sql`, each column by name, leaving out `skip`.
fn rows(conn: &rusqlite::Connection, sql: &str, skip: &[&str]) -> Vec<Vec<(String, SqlValue)>> {
    let mut stmt = conn.prepare(sql).unwrap();
    let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    stmt.query_map([], |row| {
        Ok(names
            .iter()
            .enumerate()
            .filter(|(_, name)| !skip.contains(&name.as_str()))
            .map(|(i, name)| (name.clone(), row.get::<_, SqlValue>(i).unwrap()))
            .collect())
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn delivery_ids(data_dir: &Path) -> Vec<String> {
    let conn = open(data_dir);
    let mut stmt = conn
        .prepare("SELECT id FROM deliveries ORDER BY seq")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn delivery_count(data_dir: &Path) -> usize {
    open(data_dir)
        .query_row("SELECT count(*) FROM deliveries", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap() as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_that_was_off_gets_everything_in_order_byte_for_byte_and_derives_the_same() {
    let relay_dir = tempfile::tempdir().unwrap();
    let follower_dir = tempfile::tempdir().unwrap();
    let mut relay = start_relay(relay_dir.path(), "127.0.0.1:0");
    let mut follower = start_follower(follower_dir.path(), Some(&relay));
    send(&relay.serve.webhook_url, 5, 0).await;
    wait_for_events(&follower, 5, Duration::from_secs(30)).await;
    stop(&mut follower);

    // The laptop is closed: the relay receives on.
    send(&relay.serve.webhook_url, 200, 5).await;
    let mut follower = start_follower(follower_dir.path(), None);
    let status = wait_for_events(&follower, 205, Duration::from_secs(60)).await;
    assert_eq!(
        status["follow"]["relay"], relay.sync_url,
        "the relay followed is remembered across restarts"
    );
    assert_eq!(status["follow"]["state"], "following", "{status}");
    wait_for_events(&relay.serve, 205, Duration::from_secs(30)).await;
    stop(&mut follower);
    stop(&mut relay.serve);

    let relay_db = open(relay_dir.path());
    let follower_db = open(follower_dir.path());
    let raw = "SELECT id, received_at, endpoint_id, endpoint_name, method, query, headers,
                      remote_addr, client_ip, via_tunnel, body FROM deliveries ORDER BY seq";
    let relayed = rows(&relay_db, raw, &[]);
    assert_eq!(relayed.len(), 205);
    assert_eq!(
        rows(&follower_db, raw, &[]),
        relayed,
        "every delivery, in the relay's order, with its id, time, headers and body byte for byte"
    );
    // The path goes over without the relay's endpoint token.
    let token = relay.serve.webhook_url.rsplit('/').next().unwrap();
    let endpoint_id: String = relay_db
        .query_row("SELECT id FROM endpoints WHERE is_default = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    let paths = |conn: &rusqlite::Connection| -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT path FROM deliveries ORDER BY seq")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let expected: Vec<String> = paths(&relay_db)
        .iter()
        .map(|p| p.replacen(token, &endpoint_id, 1))
        .collect();
    assert_eq!(
        paths(&follower_db),
        expected,
        "paths keep their sub-path, with the endpoint's id for its token"
    );
    for dir in [follower_dir.path()] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            assert!(
                memchr::memmem::find(&bytes, token.as_bytes()).is_none(),
                "the relay's endpoint token is nowhere in the follower's files"
            );
        }
    }

    // Derived here as if they had arrived here.
    let derived = [
        (
            "SELECT * FROM events ORDER BY seq",
            &["path", "search_hash"][..],
        ),
        ("SELECT * FROM contacts ORDER BY key", &["id"][..]),
        ("SELECT * FROM contact_cards ORDER BY contact_key", &[][..]),
        ("SELECT * FROM event_shapes ORDER BY event_type", &[][..]),
    ];
    for (sql, skip) in derived {
        let on_relay = rows(&relay_db, sql, skip);
        assert!(!on_relay.is_empty(), "the relay derived something: {sql}");
        assert_eq!(
            rows(&follower_db, sql, skip),
            on_relay,
            "derived the same on both: {sql}"
        );
    }
    let repeats: i64 = follower_db
        .query_row(
            "SELECT count(*) FROM events WHERE repeat_of IS NOT NULL OR attempt > 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        repeats > 0,
        "repeats and retries were among them, and match"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sync_listener_wants_its_token_and_serves_nothing_but_sync() {
    let relay_dir = tempfile::tempdir().unwrap();
    let relay = start_relay(relay_dir.path(), "127.0.0.1:0");
    send(&relay.serve.webhook_url, 3, 0).await;
    let endpoint_token = relay
        .serve
        .webhook_url
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let client = reqwest::Client::new();
    let paths = [
        "/sync/v1/deliveries",
        "/sync/v1/deliveries?after=0&limit=1000",
        "/sync/v1/live",
        "/api/status",
        "/api/export",
        "/",
        &format!("/h/{endpoint_token}"),
    ];
    let wrong = [
        None,
        Some(relay.serve.token.clone()),
        Some(format!("{}x", relay.sync_token)),
        Some(relay.sync_token[..relay.sync_token.len() - 1].to_string()),
        Some(String::new()),
    ];
    for path in paths {
        for token in &wrong {
            let mut request = client.get(format!("{}{path}", relay.sync_url));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let answer = request.send().await.unwrap();
            assert_eq!(answer.status(), 401, "{path} with {token:?}");
            let body = answer.text().await.unwrap();
            assert!(
                !body.contains("contact") && !body.contains("received_at"),
                "a refusal says nothing else: {body}"
            );
        }
    }
    // The token in a query string or a cookie is not the header.
    for attempt in [
        client.get(format!(
            "{}/sync/v1/deliveries?token={}",
            relay.sync_url, relay.sync_token
        )),
        client
            .get(format!("{}/sync/v1/deliveries", relay.sync_url))
            .header("cookie", format!("token={}", relay.sync_token)),
    ] {
        assert_eq!(attempt.send().await.unwrap().status(), 401);
    }
    // With the token: sync, and nothing else.
    for (method, path, status) in [
        ("GET", "/api/status".to_string(), 404),
        ("GET", "/".to_string(), 404),
        ("POST", format!("/h/{endpoint_token}"), 404),
        ("GET", "/api/export".to_string(), 404),
        ("POST", "/sync/v1/deliveries".to_string(), 405),
        ("DELETE", "/sync/v1/deliveries".to_string(), 405),
        ("GET", "/sync/v1/deliveries?after=x".to_string(), 400),
    ] {
        let answer = client
            .request(method.parse().unwrap(), format!("{}{path}", relay.sync_url))
            .bearer_auth(&relay.sync_token)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), status, "{method} {path}");
    }
    let page = client
        .get(format!("{}/sync/v1/deliveries?after=0", relay.sync_url))
        .bearer_auth(&relay.sync_token)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(
        page.headers()["x-hookscope-head"],
        "3",
        "how far there is to go: the newest seq"
    );
    let text = page.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "the three deliveries");
    assert_eq!(
        lines
            .iter()
            .map(|l| l["seq"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [1, 2, 3],
        "in order, each with its cursor"
    );
    for secret in [&endpoint_token, &relay.serve.token, &relay.sync_token] {
        assert!(
            !text.contains(secret.as_str()),
            "no token of the relay goes out in a page"
        );
    }
    // The sync token is kept across restarts.
    let mut relay = relay;
    stop(&mut relay.serve);
    let again = start_relay(relay_dir.path(), "127.0.0.1:0");
    assert_eq!(
        again.sync_token, relay.sync_token,
        "followers keep working after the relay restarts"
    );

    // Only on loopback; a follower refuses a relay in clear over a network.
    for (args, says) in [
        (
            vec!["serve", "--sync", "0.0.0.0:0", "--tunnel", "off"],
            "not a loopback address",
        ),
        (
            vec![
                "serve",
                "--follow",
                "http://192.0.2.7:4749",
                "--follow-token",
                "t",
                "--tunnel",
                "off",
            ],
            "in clear",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(BIN)
            .args(&args)
            .env("HOOKSCOPE_DATA_DIR", dir.path())
            .env("HOOKSCOPE_INGEST", "127.0.0.1:0")
            .env("HOOKSCOPE_UI", "127.0.0.1:0")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} is refused");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains(says), "{args:?} says why: {said}");
    }
}

/// A free port on loopback, for a relay that must come back on the same address.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One export line for `hookscope import`, with a body of about `size` bytes.
fn history_line(n: usize, size: usize) -> String {
    json!({
        "id": format!("01900000-0000-7000-8000-{n:012}"),
        "received_at": hookscope_core::timefmt::format_micros(1_764_000_000_000_000 + n as i64),
        "endpoint": "ep_history", "method": "POST", "path": "/h/x",
        "headers": [["content-type", "application/json"]],
        "body": {"type": "contact.created", "data": {"contact": {
            "email": format!("person{}@example.com", n % 50), "padding": "x".repeat(size)}}},
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_killed_mid_sync_comes_back_and_the_follower_resumes_from_its_cursor() {
    const HISTORY: usize = 4_000;
    let relay_dir = tempfile::tempdir().unwrap();
    let follower_dir = tempfile::tempdir().unwrap();
    // What the relay holds before the follower first connects: about 64 MB.
    let file = relay_dir.path().join("history.ndjson");
    let lines: Vec<String> = (0..HISTORY).map(|n| history_line(n, 16_000)).collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let imported = Command::new(BIN)
        .args(["import", file.to_str().unwrap()])
        .env("HOOKSCOPE_DATA_DIR", relay_dir.path())
        .output()
        .unwrap();
    assert!(imported.status.success());
    std::fs::remove_file(file).unwrap();

    let sync_addr = format!("127.0.0.1:{}", free_port());
    let mut relay = start_relay(relay_dir.path(), &sync_addr);
    let follower = start_follower(follower_dir.path(), Some(&relay));
    let started = Instant::now();
    while delivery_count(follower_dir.path()) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "pulling starts"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    relay.serve.signal("KILL");
    relay.serve.wait(Duration::from_secs(10));
    let pulled_before = delivery_count(follower_dir.path());
    assert!(
        pulled_before < HISTORY,
        "the relay died mid-sync ({pulled_before} of {HISTORY} pulled)"
    );

    // The follower says the relay is away, and why, and keeps what it has.
    let started = Instant::now();
    let view = loop {
        let view = follower.api_json("/api/follow").await;
        if view["state"] == "unreachable" {
            break view;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the follower notices: {view}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(view["since"].is_string(), "since when: {view}");
    assert!(
        view["reason"].as_str().unwrap().contains("relay"),
        "and why: {view}"
    );
    assert!(delivery_count(follower_dir.path()) >= pulled_before);

    // Back on the same address, with more arriving live.
    let relay = start_relay(relay_dir.path(), &sync_addr);
    send(&relay.serve.webhook_url, 50, 0).await;
    let total = HISTORY + 50;
    let started = Instant::now();
    while delivery_count(follower_dir.path()) < total {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the follower resumes: {} of {total}",
            delivery_count(follower_dir.path())
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let ids = delivery_ids(follower_dir.path());
    assert_eq!(ids.len(), total, "nothing twice");
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        total,
        "every id once"
    );
    assert_eq!(
        ids,
        delivery_ids(relay_dir.path()),
        "nothing lost, in the relay's order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_arrived_while_away_reaches_the_local_handler_in_order() {
    // The developer's handler on localhost.
    let received: Received = Arc::default();
    let seen = received.clone();
    let handler = axum::Router::new().fallback(move |uri: axum::http::Uri, body: bytes::Bytes| {
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push((uri.to_string(), body.to_vec()));
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let handler_url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, handler).await });

    let relay_dir = tempfile::tempdir().unwrap();
    let follower_dir = tempfile::tempdir().unwrap();
    let relay = start_relay(relay_dir.path(), "127.0.0.1:0");
    // The developer's own Hookscope, forwarding to their handler.
    stop(&mut Serve::start(follower_dir.path()));
    let forward = Command::new(BIN)
        .args(["endpoints", "forward", "Default", &handler_url])
        .env("HOOKSCOPE_DATA_DIR", follower_dir.path())
        .output()
        .unwrap();
    assert!(
        forward.status.success(),
        "{}",
        String::from_utf8_lossy(&forward.stderr)
    );
    send(&relay.serve.webhook_url, 30, 0).await;
    let _follower = start_follower(follower_dir.path(), Some(&relay));
    let started = Instant::now();
    while received.lock().unwrap().len() < 30 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "forwarded: {}",
            received.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let relay_db = open(relay_dir.path());
    let mut stmt = relay_db
        .prepare("SELECT body FROM deliveries ORDER BY seq")
        .unwrap();
    let bodies: Vec<Vec<u8>> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let got = received.lock().unwrap().clone();
    assert_eq!(
        got.iter().map(|(_, body)| body.clone()).collect::<Vec<_>>(),
        bodies,
        "each delivery reached the handler once, in order, byte for byte"
    );
    for (n, (uri, _)) in got.iter().enumerate() {
        assert_eq!(
            uri,
            &format!("/hooks/orders/{n}?n={n}"),
            "with its sub-path and query, as a local delivery is forwarded"
        );
    }
}
