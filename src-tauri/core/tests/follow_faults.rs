//! A follower and its relay with a fault-injecting proxy between them: a relay that stalls
//! after its headers, never answers, sends a line that is no delivery, answers 5xx for a
//! while, or whose connections are cut mid-page. While a fault lasts the follower says so
//! (never "following" while nothing moves); once it clears, every delivery taken
//! meanwhile arrives, in order, once. Also: deliveries of control bytes near the body
//! limit, and a crowd of connections without the token while a follower syncs.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hookscope_core::app::{self, Running, ServeOptions};
use hookscope_core::delivery::follow::FollowTarget;
use hookscope_core::exchange::sync_protocol::SyncTiming;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support;

use support::{Api, test_options};

/// Short clocks: a heartbeat every 200 ms, silence after 1 s, pauses up to 500 ms.
fn timing() -> SyncTiming {
    SyncTiming {
        heartbeat: Duration::from_millis(200),
        connect: Duration::from_secs(1),
        silence: Duration::from_secs(1),
        retry_first: Duration::from_millis(50),
        retry_last: Duration::from_millis(500),
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    None,
    /// The relay's answer's headers go through, then nothing.
    StallAfterHeaders,
    /// The request is taken and never answered.
    NeverAnswer,
    /// A line that is no delivery (`{"seq": i64::MAX}`) before the relay's own.
    Poison,
    /// 503 at once.
    ServerError,
    /// The answer's first bytes, then the connection is cut.
    CutMidAnswer,
}

/// A TCP proxy in front of the relay's sync listener, each new connection served as
/// `fault` says; `cut_all` drops every open one (the live feed too).
struct Proxy {
    addr: SocketAddr,
    fault: Arc<Mutex<Fault>>,
    open: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    async fn start(relay: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let fault = Arc::new(Mutex::new(Fault::None));
        let open: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (faults, conns) = (fault.clone(), open.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let fault = *faults.lock().unwrap();
                let task = tokio::spawn(serve(client, relay, fault));
                conns.lock().unwrap().push(task.abort_handle());
            }
        });
        Proxy { addr, fault, open }
    }

    /// From now on every new connection meets `fault`, and the open ones are cut, so the
    /// follower's next requests meet it.
    fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
        self.cut_all();
    }

    /// New connections go through again; the open ones stay as they are (a stalled one
    /// stays stalled until the follower gives up on it).
    fn clear(&self) {
        *self.fault.lock().unwrap() = Fault::None;
    }

    fn cut_all(&self) {
        for task in self.open.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

/// Reads an HTTP head (up to the blank line) from `stream`.
async fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(head)
}

async fn serve(mut client: TcpStream, relay: SocketAddr, fault: Fault) {
    let Some(request) = read_head(&mut client).await else {
        return;
    };
    match fault {
        Fault::NeverAnswer => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return;
        }
        Fault::ServerError => {
            let _ = client
                .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await;
            return;
        }
        _ => {}
    }
    let Ok(mut upstream) = TcpStream::connect(relay).await else {
        return;
    };
    // One request per connection: the follower's client opens another for the next.
    let request =
        String::from_utf8_lossy(&request).replace("\r\n\r\n", "\r\nconnection: close\r\n\r\n");
    if upstream.write_all(request.as_bytes()).await.is_err() {
        return;
    }
    if fault == Fault::None {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        return;
    }
    let Some(head) = read_head(&mut upstream).await else {
        return;
    };
    if client.write_all(&head).await.is_err() {
        return;
    }
    match fault {
        Fault::StallAfterHeaders => tokio::time::sleep(Duration::from_secs(3600)).await,
        Fault::Poison => {
            // The relay's answers are chunked: one more chunk, first.
            let line = format!("{{\"seq\":{}}}\n", i64::MAX);
            let chunk = format!("{:x}\r\n{line}\r\n", line.len());
            if client.write_all(chunk.as_bytes()).await.is_ok() {
                let _ = tokio::io::copy(&mut upstream, &mut client).await;
            }
        }
        Fault::CutMidAnswer => {
            // A few bytes into the first chunk: no line is ever whole.
            let mut some = [0u8; 10];
            if upstream.read_exact(&mut some).await.is_ok() {
                let _ = client.write_all(&some).await;
            }
        }
        Fault::None | Fault::NeverAnswer | Fault::ServerError => unreachable!(),
    }
}

async fn relay(dir: &std::path::Path) -> Running {
    app::start(ServeOptions {
        sync: Some("127.0.0.1:0".parse().unwrap()),
        sync_timing: timing(),
        ..test_options(dir)
    })
    .await
    .unwrap()
}

async fn follower(dir: &std::path::Path, url: &str, token: &str) -> Running {
    app::start(ServeOptions {
        follow: Some(FollowTarget::new(url, token).unwrap()),
        sync_timing: timing(),
        ..test_options(dir)
    })
    .await
    .unwrap()
}

/// Posts `count` small deliveries, numbered from `from`; returns their ids.
async fn send(running: &Running, from: usize, count: usize) -> Vec<String> {
    let http = reqwest::Client::new();
    let mut ids = Vec::new();
    for n in from..from + count {
        let body = format!(
            r#"{{"type":"contact.tag.added","data":{{"contact":{{"email":"p{n}@example.com"}},"tag":{{"name":"t{n}"}}}}}}"#
        );
        let response = http
            .post(&running.webhook_url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let ack: Value = response.json().await.unwrap();
        ids.push(ack["id"].as_str().unwrap().to_string());
    }
    ids
}

/// The ids of the deliveries a store holds, in its order (oldest first).
async fn stored(running: &Running) -> Vec<String> {
    running
        .state
        .store
        .read(|conn| {
            let mut stmt = conn.prepare("SELECT id FROM deliveries ORDER BY seq")?;
            let ids = stmt
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(ids)
        })
        .await
        .unwrap()
}

/// Waits (at most `within`) for the follower's state; returns how long it took.
async fn wait_state(follower: &Running, state: &str, within: Duration) -> Duration {
    let started = Instant::now();
    let mut view = follower.state.follow.watch_view();
    let reached = tokio::time::timeout(within, view.wait_for(|v| v.state == state)).await;
    assert!(
        reached.is_ok(),
        "the follower is {state:?} within {within:?}: {:?}",
        follower.state.follow.view()
    );
    started.elapsed()
}

/// Waits (at most `within`) until the follower's reason for being unreachable is one of
/// its deadlines; returns how long it took.
async fn wait_deadline(follower: &Running, within: Duration) -> Duration {
    let started = Instant::now();
    let mut view = follower.state.follow.watch_view();
    let deadline = |reason: &str| {
        ["did not answer within", "went silent"]
            .iter()
            .any(|said| reason.contains(said))
    };
    let reached = tokio::time::timeout(
        within,
        view.wait_for(|v| v.reason.as_deref().is_some_and(deadline)),
    )
    .await;
    assert!(
        reached.is_ok(),
        "a deadline ends the stalled request within {within:?}: {:?}",
        follower.state.follow.view()
    );
    started.elapsed()
}

/// Waits (at most `within`) until the follower holds exactly `ids`, in order, once.
async fn wait_for_all(follower: &Running, ids: &[String], within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let got = stored(follower).await;
        if got == ids {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "every delivery, in order, once, within {within:?}: {} of {} ({:?})",
            got.len(),
            ids.len(),
            follower.state.follow.view()
        );
        assert!(
            got.len() <= ids.len() && ids.starts_with(&got),
            "in order and once: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_each_fault_clears_every_delivery_arrives_in_order_once() {
    let (relay_dir, follower_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let relay = relay(relay_dir.path()).await;
    let sync: SocketAddr = relay.sync_url.as_ref().unwrap()["http://".len()..]
        .parse()
        .unwrap();
    let proxy = Proxy::start(sync).await;
    let mut sent = send(&relay, 0, 20).await;
    let follower = follower(
        follower_dir.path(),
        &format!("http://{}", proxy.addr),
        relay.sync_token.as_ref().unwrap(),
    )
    .await;
    wait_for_all(&follower, &sent, Duration::from_secs(20)).await;
    wait_state(&follower, "following", Duration::from_secs(5)).await;

    let mut report = Vec::new();
    for fault in [
        Fault::StallAfterHeaders,
        Fault::NeverAnswer,
        Fault::Poison,
        Fault::ServerError,
        Fault::CutMidAnswer,
    ] {
        proxy.set(fault);
        // Taken by the relay while the fault lasts.
        sent.extend(send(&relay, sent.len(), 5).await);
        let noticed = wait_state(&follower, "unreachable", Duration::from_secs(10)).await;
        // A stall is ended by the follower's own deadline (1 s here), not by a cut.
        let stalled = matches!(fault, Fault::StallAfterHeaders | Fault::NeverAnswer);
        let deadline = if stalled {
            Some(wait_deadline(&follower, Duration::from_secs(10)).await)
        } else {
            None
        };
        // It stays honest while the fault lasts: nothing moves, and it says so.
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(
            follower.state.follow.view().state,
            "unreachable",
            "{fault:?}"
        );
        assert!(
            stored(&follower).await.len() < sent.len(),
            "{fault:?}: nothing got through"
        );
        let reason = follower.state.follow.view().reason.unwrap_or_default();
        // Cleared without cutting: a request stalled now must be given up by the
        // follower's deadline before what was sent meanwhile can arrive.
        proxy.clear();
        let recovered = wait_for_all(&follower, &sent, Duration::from_secs(20)).await;
        wait_state(&follower, "following", Duration::from_secs(5)).await;
        let deadline = deadline
            .map(|after| format!(", a stalled request given up after {after:?}"))
            .unwrap_or_default();
        report.push(format!(
            "{fault:?}: unreachable in {noticed:?}{deadline} ({reason}), every delivery there {recovered:?} after the fault cleared"
        ));
    }
    // Deliveries of control bytes near the body limit: as base64 a line is 4/3 of its
    // body, not six times it.
    let big: Vec<String> = {
        let http = reqwest::Client::new();
        let mut ids = Vec::new();
        for fill in [1u8, 31] {
            let body = vec![fill; 7 * 1024 * 1024 + 900 * 1024];
            let ack: Value = http
                .post(&relay.webhook_url)
                .header("content-type", "text/plain")
                .body(body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            ids.push(ack["id"].as_str().unwrap().to_string());
        }
        ids
    };
    sent.extend(big);
    sent.extend(send(&relay, sent.len(), 3).await);
    wait_for_all(&follower, &sent, Duration::from_secs(60)).await;
    println!("{}", report.join("\n"));
    follower.stop().await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_without_the_token_never_keep_a_follower_out() {
    let (relay_dir, follower_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let relay = relay(relay_dir.path()).await;
    let sync_url = relay.sync_url.clone().unwrap();
    let sync: SocketAddr = sync_url["http://".len()..].parse().unwrap();
    let mut sent = send(&relay, 0, 10).await;
    // 64 connections that ask without the token, and 64 that say nothing at all.
    let mut crowd = Vec::new();
    for n in 0..128 {
        let mut stream = TcpStream::connect(sync).await.unwrap();
        if n % 2 == 0 {
            stream
                .write_all(b"GET /sync/v1/live?after=0 HTTP/1.1\r\nhost: x\r\n\r\n")
                .await
                .unwrap();
        }
        crowd.push(stream);
    }
    // Those that asked were answered 401 and closed at once.
    let mut refused = 0;
    for stream in crowd.iter_mut().step_by(2) {
        let mut answer = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
        if read.is_ok() && answer.starts_with(b"HTTP/1.1 401") {
            refused += 1;
        }
    }
    assert_eq!(
        refused, 64,
        "every request without the token: 401, connection closed"
    );
    let follower = follower(
        follower_dir.path(),
        &sync_url,
        relay.sync_token.as_ref().unwrap(),
    )
    .await;
    wait_for_all(&follower, &sent, Duration::from_secs(20)).await;
    sent.extend(send(&relay, 10, 5).await);
    wait_for_all(&follower, &sent, Duration::from_secs(20)).await;
    assert_eq!(follower.state.follow.view().state, "following");
    drop(crowd);
    let answer = Api::of(&follower).json("/api/follow").await;
    assert!(
        !answer
            .to_string()
            .contains(relay.sync_token.as_ref().unwrap()),
        "the token is never shown"
    );
    follower.stop().await;
    relay.stop().await;
}
