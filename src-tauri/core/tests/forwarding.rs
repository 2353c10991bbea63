//! Forwarding to the user's own handler, against real local target servers: exact bytes
//! and headers, retries of a failing target, a target that is down or slow never slowing
//! ingest, and forwards that survive a restart. And the answers an endpoint can be told to
//! give.

use crate::support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use hookscope_core::Running;
use hookscope_core::app::{self, ServeOptions};
use hookscope_core::delivery::forward::ForwardPolicy;
use serde_json::{Value, json};
use support::{Api, Fixture, fixture, test_options};

/// What a target received.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    path: String,
    query: Option<String>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// A target answering from a script (one status per request, then 200), after `delay`.
#[derive(Default)]
struct Target {
    received: Vec<Received>,
    script: Vec<u16>,
    delay: Duration,
}

type Shared = Arc<Mutex<Target>>;

async fn target_on(listener: tokio::net::TcpListener, target: Shared) {
    let app = axum::Router::new()
        .fallback(
            |State(target): State<Shared>, request: Request| async move {
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, usize::MAX)
                    .await
                    .unwrap()
                    .to_vec();
                let (status, delay) = {
                    let mut t = target.lock().unwrap();
                    t.received.push(Received {
                        method: parts.method.to_string(),
                        path: parts.uri.path().to_string(),
                        query: parts.uri.query().map(str::to_string),
                        headers: parts
                            .headers
                            .iter()
                            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_string()))
                            .collect(),
                        body,
                    });
                    let status = if t.script.is_empty() {
                        200
                    } else {
                        t.script.remove(0)
                    };
                    (status, t.delay)
                };
                tokio::time::sleep(delay).await;
                (
                    StatusCode::from_u16(status).unwrap(),
                    [("x-handler", "test")],
                    format!("handled with {status}"),
                )
            },
        )
        .with_state(target);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
}

async fn target(script: Vec<u16>, delay: Duration) -> (String, Shared) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shared: Shared = Arc::new(Mutex::new(Target {
        script,
        delay,
        ..Target::default()
    }));
    target_on(listener, shared.clone()).await;
    (base, shared)
}

const QUICK: ForwardPolicy = ForwardPolicy {
    first_retry: Duration::from_millis(100),
    longest_wait: Duration::from_secs(1),
    attempts: 3,
    timeout: Duration::from_millis(500),
};

async fn start(dir: &std::path::Path, policy: ForwardPolicy) -> Running {
    app::start(ServeOptions {
        forward: policy,
        ..test_options(dir)
    })
    .await
    .unwrap()
}

async fn forward_to(api: &Api, running: &Running, target: Option<&str>) {
    let endpoint = running.state.store.default_endpoint().unwrap();
    let answer = api
        .http
        .patch(format!("{}/api/endpoints/{}", api.base, endpoint.id))
        .bearer_auth(&api.token)
        .json(&json!({ "forward_to": target }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
}

/// Posts a fixture to the webhook URL plus `suffix`; returns the event id and how long the
/// acknowledgement took.
async fn post(running: &Running, f: &Fixture, suffix: &str) -> (String, Duration) {
    let started = Instant::now();
    let mut request = reqwest::Client::new()
        .post(format!("{}{suffix}", running.webhook_url))
        .body(f.body.clone());
    for (name, value) in &f.headers {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    let took = started.elapsed();
    assert_eq!(response.status(), 200);
    let ack: Value = response.json().await.unwrap();
    (ack["id"].as_str().unwrap().to_string(), took)
}

/// Posts `body` to the webhook path + `suffix` exactly as written (no client-side
/// normalising); returns the stored event's id.
async fn raw_post(running: &Running, suffix: &str, body: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let url = url::Url::parse(&running.webhook_url).unwrap();
    let mut stream = tokio::net::TcpStream::connect(running.ingest_addr)
        .await
        .unwrap();
    let head = format!(
        "POST {}{suffix} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        url.path(),
        running.ingest_addr,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    answer
        .lines()
        .find_map(|l| l.strip_prefix("x-hookscope-event: "))
        .expect("the event id")
        .trim()
        .to_string()
}

/// The event's `forward` once `done` holds, waiting as long as a loaded machine may need.
async fn forward_when(api: &Api, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let forward = api.json(&format!("/api/events/{id}")).await["forward"].clone();
        if done(&forward) {
            return forward;
        }
        assert!(
            Instant::now() < deadline,
            "the forward of {id} never {what}: {forward}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The event's `forward` once it is no longer pending.
async fn settled(api: &Api, id: &str) -> Value {
    forward_when(api, id, "settled", |f| f["state"] != "pending").await
}

/// The event's `forward` once its first attempt is over.
async fn first_attempt_over(api: &Api, id: &str) -> Value {
    forward_when(api, id, "made its first attempt", |f| {
        f["attempts"].as_i64() >= Some(1)
    })
    .await
}

/// A loopback port bound but not listening: connections to it are refused for as long as
/// the socket is kept, and no other socket can take the port meanwhile.
fn refusing_port() -> (tokio::net::TcpSocket, std::net::SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    (socket, addr)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn deliveries_reach_the_target_byte_for_byte_with_their_headers() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path(), QUICK).await;
    let api = Api::of(&running);
    let (base, target) = target(vec![], Duration::ZERO).await;
    forward_to(&api, &running, Some(&format!("{base}/webhooks/systeme"))).await;
    let endpoints = api.json("/api/endpoints").await;
    assert_eq!(
        endpoints["endpoints"][0]["forward_to"],
        format!("{base}/webhooks/systeme")
    );

    let sale = fixture("systeme-settings/sale-new");
    let (id, _) = post(&running, &sale, "/orders?attempt=1").await;
    let forward = settled(&api, &id).await;
    assert_eq!(forward["state"], "delivered");
    assert_eq!(forward["status"], 200);
    assert_eq!(forward["attempts"], 1);
    assert_eq!(
        forward["target"],
        format!("{base}/webhooks/systeme/orders?attempt=1")
    );

    let got = target.lock().unwrap().received[0].clone();
    assert_eq!(got.method, "POST");
    assert_eq!(got.path, "/webhooks/systeme/orders");
    assert_eq!(got.query.as_deref(), Some("attempt=1"));
    assert_eq!(got.body, sale.body, "the exact bytes");
    for name in [
        "x-webhook-signature",
        "x-webhook-message-id",
        "x-webhook-event",
        "user-agent",
        "content-type",
    ] {
        assert_eq!(
            header(&got.headers, name),
            header(&sale.headers, name),
            "{name} passed on"
        );
    }
    let host = header(&got.headers, "host").unwrap();
    assert!(
        base.ends_with(host),
        "the target's own Host, not Hookscope's: {host}"
    );

    let answer = api.json(&format!("/api/events/{id}/forward")).await;
    assert_eq!(answer["status"], 200);
    assert_eq!(answer["body_text"], "handled with 200");
    assert!(answer["headers"].to_string().contains("x-handler"));

    // Forwarding stopped: later deliveries stay here only.
    forward_to(&api, &running, None).await;
    let (id, _) = post(&running, &sale, "").await;
    assert_eq!(
        api.json(&format!("/api/events/{id}")).await["forward"],
        Value::Null
    );
    let bad = api
        .http
        .patch(format!(
            "{}/api/endpoints/{}",
            api.base,
            running.state.store.default_endpoint().unwrap().id
        ))
        .bearer_auth(&api.token)
        .json(&json!({"forward_to": "ftp://nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    running.stop().await;
}

#[tokio::test]
async fn a_failing_target_is_retried_and_every_attempt_counted() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path(), QUICK).await;
    let api = Api::of(&running);
    let (base, target) = target(vec![500, 503], Duration::ZERO).await;
    forward_to(&api, &running, Some(&base)).await;
    let tag = fixture("systeme-automation/tag-added");
    let (id, _) = post(&running, &tag, "").await;
    let forward = settled(&api, &id).await;
    assert_eq!(forward["state"], "delivered");
    assert_eq!(forward["attempts"], 3);
    assert_eq!(forward["error"], Value::Null);
    let received = target.lock().unwrap().received.clone();
    assert_eq!(received.len(), 3);
    assert!(received.iter().all(|r| r.body == tag.body));

    // Always 500: given up after the last attempt, with the reason.
    target.lock().unwrap().script = vec![500; 10];
    let (id, _) = post(&running, &tag, "").await;
    let forward = settled(&api, &id).await;
    assert_eq!(forward["state"], "failed");
    assert_eq!(forward["attempts"], 3);
    assert_eq!(forward["status"], 500);
    assert_eq!(forward["error"], "the target answered 500");
    running.stop().await;
}

#[tokio::test]
async fn a_target_that_is_down_or_slow_never_slows_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let patient = ForwardPolicy {
        timeout: Duration::from_secs(5),
        ..QUICK
    };
    let running = start(dir.path(), patient).await;
    let api = Api::of(&running);

    // Down: nothing listens there.
    let (_refusing, addr) = refusing_port();
    let down = format!("http://{addr}");
    forward_to(&api, &running, Some(&down)).await;
    let tag = fixture("systeme-automation/tag-added");
    let (id, _) = post(&running, &tag, "").await;
    let forward = settled(&api, &id).await;
    assert_eq!(forward["state"], "failed");
    assert_eq!(forward["attempts"], 3);
    assert!(
        forward["error"]
            .as_str()
            .unwrap()
            .contains("refused the connection"),
        "{forward}"
    );

    // Slow: longer than the timeout. Deliveries meanwhile are acknowledged well within
    // the forward's 5 s timeout: ingest never waits for it.
    let (slow, target) = target(vec![], Duration::from_secs(30)).await;
    forward_to(&api, &running, Some(&slow)).await;
    let (first, _) = post(&running, &tag, "").await;
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let (_, took) = post(&running, &tag, "").await;
        slowest = slowest.max(took);
    }
    assert!(
        slowest < Duration::from_millis(2500),
        "acknowledged in {slowest:?} while the target hangs"
    );
    // Forwards to one target go one at a time: the first attempt is what this checks.
    let forward = first_attempt_over(&api, &first).await;
    assert_eq!(forward["error"], "the target did not answer in time");
    assert!(!target.lock().unwrap().received.is_empty());
    running.stop().await;
}

#[tokio::test]
async fn forwards_waiting_for_a_retry_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let patient = ForwardPolicy {
        first_retry: Duration::from_secs(3),
        longest_wait: Duration::from_secs(5),
        attempts: 5,
        timeout: Duration::from_millis(500),
    };
    let running = start(dir.path(), patient.clone()).await;
    let api = Api::of(&running);
    let (refusing, addr) = refusing_port(); // down for now
    forward_to(&api, &running, Some(&format!("http://{addr}/in"))).await;
    let sale = fixture("systeme-settings/sale-new");
    let (id, _) = post(&running, &sale, "").await;
    // The first attempt fails; stop before the retry is due.
    let forward = first_attempt_over(&api, &id).await;
    running.stop().await;
    assert_eq!(
        forward["attempts"], 1,
        "stopped before the retry: {forward}"
    );

    let shared: Shared = Arc::default();
    target_on(refusing.listen(64).unwrap(), shared.clone()).await;
    let running = start(dir.path(), patient).await;
    let api = Api::of(&running);
    let forward = settled(&api, &id).await;
    assert_eq!(forward["state"], "delivered");
    assert_eq!(forward["attempts"], 2);
    assert_eq!(shared.lock().unwrap().received[0].body, sale.body);
    running.stop().await;
}

#[tokio::test]
async fn an_endpoint_answers_with_the_chosen_status_headers_body_and_delay() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path(), QUICK).await;
    let api = Api::of(&running);
    let endpoint = running.state.store.default_endpoint().unwrap();
    let patch = |body: Value| {
        api.http
            .patch(format!("{}/api/endpoints/{}", api.base, endpoint.id))
            .bearer_auth(&api.token)
            .json(&body)
            .send()
    };
    let answer = patch(
        json!({"response": {"status": 503, "headers": [["retry-after", "30"]],
        "body": "handler down", "delay_ms": 2000}}),
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 200);
    let view: Value = answer.json().await.unwrap();
    assert_eq!(view["response"]["status"], 503);

    let tag = fixture("systeme-automation/tag-added");
    let started = Instant::now();
    let mut request = reqwest::Client::new()
        .post(&running.webhook_url)
        .body(tag.body.clone());
    for (name, value) in &tag.headers {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(2000),
        "the delay is kept"
    );
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "30");
    let id = response.headers()["x-hookscope-event"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(response.text().await.unwrap(), "handler down");
    // Stored all the same.
    assert_eq!(
        api.json(&format!("/api/events/{id}")).await["body"],
        serde_json::from_slice::<Value>(&tag.body).unwrap()
    );

    for bad in [
        json!({"response": {"status": 99}}),
        json!({"response": {"status": 200, "delay_ms": 999_999}}),
        json!({"response": {"status": 200, "headers": [["bad header", "x"]]}}),
        json!({"response": {"status": 200, "colour": "blue"}}),
    ] {
        assert_eq!(patch(bad.clone()).await.unwrap().status(), 400, "{bad}");
    }

    // Back to the default: a fast 200 with the event id.
    assert_eq!(
        patch(json!({"response": null})).await.unwrap().status(),
        200
    );
    let (_, took) = post(&running, &tag, "").await;
    assert!(took < Duration::from_millis(1500), "no delay: {took:?}");
    running.stop().await;
}

async fn replay(api: &Api, path: &str, body: Value) -> (u16, Value) {
    let response = api
        .http
        .post(format!("{}{path}", api.base))
        .bearer_auth(&api.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn stored_events_are_replayed_as_they_were_edited_or_re_signed() {
    const SECRET: &str = "whsec-test-0123456789abcdef";
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path(), QUICK).await;
    let api = Api::of(&running);
    let (base, target) = target(vec![], Duration::ZERO).await;
    let sale = fixture("systeme-settings/sale-new");
    let (id, _) = post(&running, &sale, "/orders").await;

    // Nowhere to send it yet.
    let (status, answer) = replay(&api, &format!("/api/events/{id}/replay"), json!({})).await;
    assert_eq!(status, 400, "{answer}");

    // To a URL, exactly as it arrived.
    let (status, first) = replay(
        &api,
        &format!("/api/events/{id}/replay"),
        json!({"url": format!("{base}/replayed")}),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["status"], 200);
    assert_eq!(first["body"], "handled with 200");
    let got = target.lock().unwrap().received[0].clone();
    assert_eq!(got.path, "/replayed");
    assert_eq!(got.body, sale.body);
    assert_eq!(
        header(&got.headers, "x-webhook-signature"),
        header(&sale.headers, "x-webhook-signature")
    );

    // Re-signing needs the secret; edited and re-signed, it verifies and is a new attempt.
    let (status, _) = replay(
        &api,
        &format!("/api/events/{id}/replay"),
        json!({"url": base.clone(), "resign": true}),
    )
    .await;
    assert_eq!(status, 400);
    let endpoint = running.state.store.default_endpoint().unwrap();
    api.http
        .patch(format!("{}/api/endpoints/{}", api.base, endpoint.id))
        .bearer_auth(&api.token)
        .json(&json!({"secret": SECRET, "forward_to": format!("{base}/hook")}))
        .send()
        .await
        .unwrap();
    let edited = String::from_utf8(sale.body.clone())
        .unwrap()
        .replace("4700", "9900");
    let (status, second) = replay(
        &api,
        &format!("/api/events/{id}/replay"),
        json!({"resign": true, "body": edited}),
    )
    .await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(
        second["target"],
        format!("{base}/hook/orders"),
        "the forward target"
    );
    assert_eq!(second["resigned"], true);
    assert_eq!(second["edited"], true);
    let got = target.lock().unwrap().received.last().unwrap().clone();
    assert_eq!(got.body, edited.as_bytes());
    assert_eq!(
        header(&got.headers, "x-webhook-signature"),
        Some(hookscope_core::capture::signature::sign(edited.as_bytes(), SECRET).as_str())
    );
    assert_ne!(
        header(&got.headers, "x-webhook-delivery-attempt-id"),
        header(&sale.headers, "x-webhook-delivery-attempt-id")
    );
    assert_eq!(
        header(&got.headers, "x-webhook-message-id"),
        header(&sale.headers, "x-webhook-message-id"),
        "the same message"
    );

    let history = api.json(&format!("/api/events/{id}/replays")).await;
    let history = history["replays"].as_array().unwrap();
    assert_eq!(history.len(), 2, "the refused tries are not replays");
    assert_eq!(history[1]["edited"], true);
    running.stop().await;
}

#[tokio::test]
async fn a_contact_timeline_is_replayed_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path(), QUICK).await;
    let api = Api::of(&running);
    let (base, target) = target(vec![], Duration::from_millis(20)).await;
    let mut sent = Vec::new();
    for (name, tag) in [("a", "First"), ("b", "Second"), ("c", "Third")] {
        let mut f = fixture("systeme-automation/tag-added");
        let mut body: Value = serde_json::from_slice(&f.body).unwrap();
        body["data"]["contact"]["email"] = json!("Order@Example.com");
        body["data"]["tag"]["name"] = json!(tag);
        f.body = serde_json::to_vec(&body).unwrap();
        post(&running, &f, &format!("/{name}")).await;
        sent.push(f.body);
    }
    // Someone else's event is not part of it.
    post(&running, &fixture("systeme-automation/tag-added"), "").await;
    let (status, answer) = replay(
        &api,
        "/api/contacts/order@example.com/replay",
        json!({"url": format!("{base}/in")}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["replays"].as_array().unwrap().len(), 3);
    let received = target.lock().unwrap().received.clone();
    let bodies: Vec<Vec<u8>> = received.iter().map(|r| r.body.clone()).collect();
    assert_eq!(bodies, sent, "oldest first, one after the other");

    // A selection, in the order given; an unknown id says so and the rest go on.
    let ids: Vec<String> = answer["replays"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["event_id"].as_str().unwrap().to_string())
        .collect();
    let (status, picked) = replay(
        &api,
        "/api/replays",
        json!({"ids": [ids[2], "no-such-event", ids[0]], "url": format!("{base}/in")}),
    )
    .await;
    assert_eq!(status, 200, "{picked}");
    assert_eq!(
        picked["replays"][1]["error"],
        "not found: no event no-such-event"
    );
    let received = target.lock().unwrap().received.clone();
    assert_eq!(received[3].body, sent[2]);
    assert_eq!(received[4].body, sent[0]);
    assert_eq!(received.len(), 5);
    running.stop().await;
}

#[tokio::test]
async fn test_events_are_made_from_samples_or_captures_and_signed() {
    const SECRET: &str = "whsec-test-0123456789abcdef";
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path(), QUICK).await;
    let api = Api::of(&running);
    let templates = api.json("/api/templates").await;
    let templates = templates["templates"].as_array().unwrap();
    assert_eq!(templates.len(), 18);
    assert!(templates.iter().any(|t| t["event_type"] == "SALE_NEW"));

    let endpoint = running.state.store.default_endpoint().unwrap();
    api.http
        .patch(format!("{}/api/endpoints/{}", api.base, endpoint.id))
        .bearer_auth(&api.token)
        .json(&json!({ "secret": SECRET }))
        .send()
        .await
        .unwrap();
    let (status, made) = replay(
        &api,
        "/api/test-events",
        json!({"template": "systeme-settings/sale-new", "email": "Test.Buyer@example.com",
               "amount": 1999, "set": {"pricePlan.name": "Rehearsal offer"}}),
    )
    .await;
    assert_eq!(status, 200, "{made}");
    let event = api
        .json(&format!("/api/events/{}", made["id"].as_str().unwrap()))
        .await;
    assert_eq!(event["contact_key"], "test.buyer@example.com");
    assert_eq!(
        event["signature"], "valid",
        "signed with the endpoint's secret"
    );
    assert_eq!(
        event["attempt"], 1,
        "a new message, not a retry of the sample"
    );
    assert!(
        event["summary"].as_str().unwrap().contains("19.99 EUR"),
        "{}",
        event["summary"]
    );
    assert!(
        event["summary"]
            .as_str()
            .unwrap()
            .contains("Rehearsal offer")
    );

    // From a captured event, another contact and tag.
    let (captured, _) = post(&running, &fixture("systeme-automation/tag-added"), "").await;
    let (status, made) = replay(
        &api,
        "/api/test-events",
        json!({"event": captured, "email": "other@example.com", "tag": "Rehearsed"}),
    )
    .await;
    assert_eq!(status, 200, "{made}");
    let event = api
        .json(&format!("/api/events/{}", made["id"].as_str().unwrap()))
        .await;
    assert_eq!(event["summary"], "Tag added: Rehearsed");
    assert_eq!(event["contact_key"], "other@example.com");

    for bad in [
        json!({"template": "no/such"}),
        json!({"template": "systeme-automation/tag-added", "amount": 5}),
        json!({}),
    ] {
        let (status, _) = replay(&api, "/api/test-events", bad.clone()).await;
        assert_eq!(status, 400, "{bad}");
    }
    running.stop().await;
}

#[tokio::test]
async fn forwards_never_leave_the_handler_path_and_follow_a_changed_target() {
    let dir = tempfile::tempdir().unwrap();
    let patient = ForwardPolicy {
        first_retry: Duration::from_secs(30),
        ..QUICK
    };
    let running = start(dir.path(), patient).await;
    let api = Api::of(&running);
    let (base, target) = target(vec![], Duration::ZERO).await;
    forward_to(&api, &running, Some(&format!("{base}/webhooks/systeme"))).await;
    let tag = fixture("systeme-automation/tag-added");

    // A sender trying to reach other routes of the handler: stored, not forwarded.
    // Sent raw: HTTP clients resolve `..` (even encoded) before sending, attackers don't.
    for sneaky in [
        "/../../admin",
        "/%2e%2e/%2e%2e/admin",
        "/%2E%2E/%2e%2E/admin",
        // What a handler decodes or splits differently (security review, finding 9).
        "/..%2fadmin",
        "/..%5cadmin",
        "/..;/admin",
        "/x/..%2f..%2fadmin",
        "/%252e%252e%252fadmin",
    ] {
        let id = raw_post(&running, sneaky, &tag.body).await;
        assert_eq!(
            api.json(&format!("/api/events/{id}")).await["forward"],
            Value::Null
        );
    }

    // The handler is down and a forward waits for its retry; the target changes: the
    // waiting forward goes to the new one at once.
    let (_refusing, addr) = refusing_port();
    let down = format!("http://{addr}");
    forward_to(&api, &running, Some(&down)).await;
    let (waiting, _) = post(&running, &tag, "/x").await;
    first_attempt_over(&api, &waiting).await;
    forward_to(&api, &running, Some(&format!("{base}/new"))).await;
    let forward = settled(&api, &waiting).await;
    assert_eq!(forward["state"], "delivered");
    assert_eq!(forward["target"], format!("{base}/new/x"));
    assert_eq!(
        target.lock().unwrap().received.last().unwrap().path,
        "/new/x"
    );
    assert!(
        target
            .lock()
            .unwrap()
            .received
            .iter()
            .all(|r| !r.path.contains("admin")),
        "nothing reached other routes"
    );

    // Turned off while one waits: it stops, saying why.
    forward_to(&api, &running, Some(&down)).await;
    let (stopped, _) = post(&running, &tag, "").await;
    first_attempt_over(&api, &stopped).await;
    forward_to(&api, &running, None).await;
    let forward = api.json(&format!("/api/events/{stopped}")).await["forward"].clone();
    assert_eq!(forward["state"], "failed");
    assert_eq!(forward["error"], "forwarding was turned off");
    running.stop().await;
}
