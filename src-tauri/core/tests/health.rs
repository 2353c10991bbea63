//! "Is it reaching me?": the probe of the public URL (through a real proxy listener, a
//! dead port, another server), each alert kind raised by its real cause (a wrong secret,
//! a refusing forward target, a sender outside systeme.io, a silence, the probe), sent on
//! to a local alert receiver with retries, and the health report with systeme.io's
//! webhooks compared (against a local stand-in of its API).

use crate::support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use hookscope_core::Running;
use hookscope_core::app;
use hookscope_core::delivery::forward::ForwardPolicy;
use hookscope_core::service::alert_webhook::AlertRetry;
use serde_json::{Value, json};
use support::{Api, fixture, test_options};

/// What a local receiver got, and what it answers next (then 200).
#[derive(Default)]
struct Receiver {
    bodies: Vec<Value>,
    script: Vec<u16>,
}

type Shared = Arc<Mutex<Receiver>>;

/// A local HTTP server taking JSON POSTs on any path.
async fn receiver(script: Vec<u16>) -> (String, Shared) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shared: Shared = Arc::new(Mutex::new(Receiver {
        script,
        ..Receiver::default()
    }));
    let app = axum::Router::new()
        .fallback(|State(r): State<Shared>, request: Request| async move {
            let body = axum::body::to_bytes(request.into_body(), usize::MAX)
                .await
                .unwrap();
            let mut r = r.lock().unwrap();
            r.bodies
                .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
            let status = if r.script.is_empty() {
                200
            } else {
                r.script.remove(0)
            };
            (StatusCode::from_u16(status).unwrap(), "ok")
        })
        .with_state(shared.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, shared)
}

const QUICK_RETRY: AlertRetry = AlertRetry {
    first_wait: Duration::from_millis(50),
    longest_wait: Duration::from_millis(200),
    attempts: 5,
    timeout: Duration::from_secs(2),
};

async fn start(dir: &std::path::Path, alert_webhook: Option<String>) -> Running {
    app::start(app::ServeOptions {
        proxy: Some("127.0.0.1:0".parse().unwrap()),
        alert_webhook,
        alert_retry: QUICK_RETRY,
        alert_check_every: Duration::from_millis(200),
        forward: ForwardPolicy {
            first_retry: Duration::from_millis(50),
            longest_wait: Duration::from_millis(200),
            attempts: 10,
            timeout: Duration::from_millis(500),
        },
        ..test_options(dir)
    })
    .await
    .unwrap()
}

async fn send(api: &Api, method: &str, path: &str, body: Value) -> (u16, Value) {
    let url = format!("{}{path}", api.base);
    let request = match method {
        "POST" => api.http.post(url),
        "PUT" => api.http.put(url),
        "PATCH" => api.http.patch(url),
        "DELETE" => api.http.delete(url),
        _ => unreachable!(),
    };
    let answer = request
        .bearer_auth(&api.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

/// Waits (10 s at most) for an unread alert of `kind`.
async fn alert_of(api: &Api, kind: &str) -> Value {
    for _ in 0..100 {
        let alerts = api.json("/api/alerts?unread=true").await;
        if let Some(found) = alerts["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["kind"] == kind)
        {
            return found.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "no {kind} alert within 10 s: {}",
        api.json("/api/alerts").await
    );
}

/// Waits (10 s at most) until the alert `id` is cleared (its cause ended).
async fn cleared(api: &Api, id: &Value) -> Value {
    for _ in 0..100 {
        let alerts = api.json("/api/alerts").await;
        let alert = alerts["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == *id)
            .cloned()
            .expect("the alert stays listed");
        if !alert["cleared_at"].is_null() {
            return alert;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("alert {id} was not cleared within 10 s");
}

async fn count_alerts(api: &Api, kind: &str) -> usize {
    api.json("/api/alerts").await["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == kind)
        .count()
}

async fn use_public_url(api: &Api, base: &str) {
    let (status, view) = send(
        api,
        "PUT",
        "/api/tunnel",
        json!({"tunnel": format!("manual:{base}")}),
    )
    .await;
    assert_eq!(status, 200, "{view}");
}

async fn probe(api: &Api) -> Value {
    let (status, view) = send(api, "POST", "/api/health/probe", json!({})).await;
    assert_eq!(status, 200, "{view}");
    view
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_tells_a_public_url_that_reaches_this_hookscope_from_one_that_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path(), None).await;
    let api = Api::of(&running);
    let http = reqwest::Client::new();

    let (status, refused) = send(&api, "POST", "/api/health/probe", json!({})).await;
    assert_eq!(status, 400, "no public URL yet: {refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("no public URL")
    );

    // Reachable: the public URL leads to the proxy listener, as a reverse proxy would.
    let proxy = format!("http://{}", running.proxy_addr.unwrap());
    use_public_url(&api, &proxy).await;
    let view = probe(&api).await;
    assert_eq!(view["reaches"], true, "{view}");
    assert_eq!(view["url"], proxy.as_str());
    assert!(view["error"].is_null() && view["duration_ms"].as_i64().unwrap() >= 0);
    let health = api.json("/api/health").await;
    assert_eq!(health["probe"]["reaches"], true);
    assert_eq!(health["public_url"], proxy.as_str());

    // A probe is answered but never stored, counted or forwarded, and a nonce this
    // Hookscope did not send (a stranger guessing) is not found.
    assert_eq!(api.json("/api/status").await["events"], 0);
    assert_eq!(api.json("/api/events").await["events"], json!([]));
    let guessed = http
        .post(format!("{proxy}/.hookscope/probe/0123456789abcdef"))
        .send()
        .await
        .unwrap();
    assert_eq!(guessed.status(), 404);

    // Another server behind the URL answers 200, but the probe never reached Hookscope.
    let (other, _) = receiver(vec![]).await;
    use_public_url(&api, &other).await;
    let view = probe(&api).await;
    assert_eq!(view["reaches"], false, "{view}");
    assert!(
        view["error"]
            .as_str()
            .unwrap()
            .contains("never reached this Hookscope"),
        "{view}"
    );

    // A dead port: not reachable, with advice, and a probe alert raised.
    let dead = {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = socket.local_addr().unwrap();
        (socket, addr)
    };
    use_public_url(&api, &format!("http://{}", dead.1)).await;
    let view = probe(&api).await;
    assert_eq!(view["reaches"], false, "{view}");
    assert!(
        view["error"]
            .as_str()
            .unwrap()
            .contains("could not be reached"),
        "{view}"
    );
    assert!(view["advice"].as_str().unwrap().contains("proxy"), "{view}");
    let alert = alert_of(&api, "probe").await;
    assert!(
        alert["message"]
            .as_str()
            .unwrap()
            .contains("does not reach"),
        "{alert}"
    );
    assert_eq!(
        count_alerts(&api, "probe").await,
        1,
        "one alert per episode"
    );

    // Back to the proxy: the next probe reaches, and the alert's episode ends.
    use_public_url(&api, &proxy).await;
    assert_eq!(probe(&api).await["reaches"], true);
    cleared(&api, &alert["id"]).await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_raises_one_verification_alert_sent_to_the_alert_webhook_with_retries() {
    let dir = tempfile::tempdir().unwrap();
    // The receiver refuses twice (a blink), then takes it.
    let (receiver_url, received) = receiver(vec![503, 500]).await;
    let running = start(dir.path(), Some(format!("{receiver_url}/hooks/alerts"))).await;
    let api = Api::of(&running);
    let http = reqwest::Client::new();
    let endpoint = running.state.store.default_endpoint().unwrap();
    let (status, _) = send(
        &api,
        "PATCH",
        &format!("/api/endpoints/{}", endpoint.id),
        json!({"secret": "a rotated secret"}),
    )
    .await;
    assert_eq!(status, 200);
    let signed = fixture("systeme-settings/sale-new");
    for _ in 0..2 {
        support::deliver(&http, &running.webhook_url, &signed).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        count_alerts(&api, "verification").await,
        0,
        "two are not three"
    );
    for _ in 0..3 {
        support::deliver(&http, &running.webhook_url, &signed).await;
    }
    let alert = alert_of(&api, "verification").await;
    assert!(
        alert["message"].as_str().unwrap().contains("in a row"),
        "{alert}"
    );
    assert_eq!(alert["endpoint_id"], endpoint.id.as_str());
    assert_eq!(
        count_alerts(&api, "verification").await,
        1,
        "one alert per episode"
    );

    // The alert webhook got it on the third try, `text` saying it all.
    for _ in 0..100 {
        if received.lock().unwrap().bodies.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let bodies = received.lock().unwrap().bodies.clone();
    assert_eq!(bodies.len(), 3, "two refusals and the delivery: {bodies:?}");
    let text = bodies[2]["text"].as_str().unwrap();
    assert!(text.contains("failed signature verification"), "{text}");
    assert_eq!(bodies[2]["kind"], "verification");
    for retry in &bodies[..2] {
        assert_eq!(
            retry["alert_id"], bodies[2]["alert_id"],
            "the same alert, retried"
        );
    }
    assert_eq!(bodies[2]["content"], bodies[2]["text"]);

    // The right secret again: the next delivery verifies and the episode ends; the read
    // alert is no longer unread.
    let (status, _) = send(
        &api,
        "PATCH",
        &format!("/api/endpoints/{}", endpoint.id),
        json!({"secret": crate::signatures::TEST_SECRET}),
    )
    .await;
    assert_eq!(status, 200);
    support::deliver(&http, &running.webhook_url, &signed).await;
    cleared(&api, &alert["id"]).await;
    let (status, read) = send(
        &api,
        "POST",
        "/api/alerts/acknowledge",
        json!({"ids": [alert["id"]]}),
    )
    .await;
    assert_eq!((status, read["acknowledged"].as_i64()), (200, Some(1)));
    assert!(
        api.json("/api/alerts?unread=true").await["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["kind"] != "verification")
    );
    let (status, _) = send(
        &api,
        "POST",
        "/api/alerts/acknowledge",
        json!({"ids": [424242]}),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = send(&api, "POST", "/api/alerts/acknowledge", json!({"ids": []})).await;
    assert_eq!(status, 400);
    let too_many: Vec<i64> = (1..=1001).collect();
    let (status, _) = send(
        &api,
        "POST",
        "/api/alerts/acknowledge",
        json!({"ids": too_many}),
    )
    .await;
    assert_eq!(status, 400, "more than 1,000 ids at once");
    let (status, _) = send(&api, "POST", "/api/alerts/acknowledge", json!({"ids": "1"})).await;
    assert_eq!(status, 400, "not a list");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_forward_target_raises_a_forward_alert_that_ends_when_it_answers() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path(), None).await;
    let api = Api::of(&running);
    // The target answers 502 three times, then takes deliveries.
    let (target, _) = receiver(vec![502, 502, 502]).await;
    let endpoint = running.state.store.default_endpoint().unwrap();
    let (status, _) = send(
        &api,
        "PATCH",
        &format!("/api/endpoints/{}", endpoint.id),
        json!({"forward_to": format!("{target}/webhooks")}),
    )
    .await;
    assert_eq!(status, 200);
    support::deliver(
        &reqwest::Client::new(),
        &running.webhook_url,
        &fixture("systeme-settings/sale-new"),
    )
    .await;
    let alert = alert_of(&api, "forward").await;
    assert!(
        alert["message"]
            .as_str()
            .unwrap()
            .contains("3 times in a row"),
        "{alert}"
    );
    assert!(
        alert["message"].as_str().unwrap().contains("/webhooks"),
        "{alert}"
    );
    // The fourth attempt is taken: the episode ends.
    cleared(&api, &alert["id"]).await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_outside_systeme_io_raises_a_source_alert_each_time_after_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path(), None).await;
    let api = Api::of(&running);
    let http = reqwest::Client::new();
    let token = running.webhook_url.rsplit('/').next().unwrap();
    let through_proxy = format!("http://{}/h/{token}", running.proxy_addr.unwrap());
    let from = |ip: &str| {
        http.post(&through_proxy)
            .header("content-type", "application/json")
            .header("x-forwarded-for", ip)
            .body(r#"{"type":"CONTACT_CREATED"}"#)
            .send()
    };
    // systeme.io's own address raises nothing; a stranger's does.
    assert_eq!(from("185.236.142.1").await.unwrap().status(), 200);
    assert_eq!(from("203.0.113.9").await.unwrap().status(), 200);
    let alert = alert_of(&api, "source").await;
    assert!(
        alert["message"].as_str().unwrap().contains("203.0.113.9"),
        "{alert}"
    );
    assert_eq!(from("203.0.113.9").await.unwrap().status(), 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        count_alerts(&api, "source").await,
        1,
        "told once until read"
    );
    send(
        &api,
        "POST",
        "/api/alerts/acknowledge",
        json!({"ids": [alert["id"]]}),
    )
    .await;
    assert_eq!(from("203.0.113.9").await.unwrap().status(), 200);
    let again = alert_of(&api, "source").await;
    assert_ne!(again["id"], alert["id"], "read, so the next one is told");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silence_longer_than_the_rule_says_raises_an_alert_that_the_next_arrival_ends() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path(), None).await;
    let api = Api::of(&running);
    let http = reqwest::Client::new();
    // Rules a typo would make are refused, with the field named.
    for bad in [
        json!({"kind": "silence", "threshold": 0}),
        json!({"kind": "silence", "threshold": 99_999_999_999_i64}),
        json!({"kind": "nap"}),
        json!({"kind": "silence", "endpoint_id": "no-such-endpoint"}),
        json!({"kind": "forward", "threshold": -1}),
    ] {
        let (status, answer) = send(&api, "POST", "/api/alert-rules", bad.clone()).await;
        assert_eq!(status, 400, "{bad} was accepted: {answer}");
    }
    let (status, rule) = send(
        &api,
        "POST",
        "/api/alert-rules",
        json!({"kind": "silence", "event_type": "SALE_NEW", "threshold": 1}),
    )
    .await;
    assert_eq!(status, 200, "{rule}");
    // Another type arriving does not count; the endpoint has never had a SALE_NEW, so
    // there is nothing usual to miss yet.
    support::deliver(
        &http,
        &running.webhook_url,
        &fixture("systeme-settings/contact-created"),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(
        count_alerts(&api, "silence").await,
        0,
        "never received: no silence"
    );
    support::deliver(
        &http,
        &running.webhook_url,
        &fixture("systeme-settings/sale-new"),
    )
    .await;
    let alert = alert_of(&api, "silence").await;
    assert_eq!(alert["event_type"], "SALE_NEW");
    assert!(
        alert["message"].as_str().unwrap().contains("no SALE_NEW"),
        "{alert}"
    );
    // A sale again: the silence is over.
    support::deliver(
        &http,
        &running.webhook_url,
        &fixture("systeme-settings/sale-new-discounted"),
    )
    .await;
    cleared(&api, &alert["id"]).await;
    // The rule deleted: listed no more, and no alert comes of it.
    let (status, rules) = send(
        &api,
        "DELETE",
        &format!("/api/alert-rules/{}", rule["id"]),
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        rules["rules"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["kind"] != "silence")
    );
    let (status, _) = send(&api, "DELETE", "/api/alert-rules/not-a-number", json!({})).await;
    assert_eq!(status, 404);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_webhook_at_this_hookscopes_own_address_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let error = match app::start(app::ServeOptions {
        ingest: format!("127.0.0.1:{port}").parse().unwrap(),
        alert_webhook: Some(format!("http://localhost:{port}/h/anything")),
        ..test_options(dir.path())
    })
    .await
    {
        Ok(_) => panic!("an alert webhook on the ingest port was accepted"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("own webhook address"), "{error}");
    for bad in ["", "not a url", "ftp://example.com/x"] {
        let error = match app::start(app::ServeOptions {
            alert_webhook: Some(bad.into()),
            ..test_options(dir.path())
        })
        .await
        {
            Ok(_) => panic!("{bad:?} was accepted as the alert webhook"),
            Err(error) => error.to_string(),
        };
        assert!(error.contains("alert webhook"), "{error}");
    }
}

/// A stand-in for systeme.io's webhook list: one webhook at an old tunnel URL of the
/// default endpoint, one at its current public URL, one of another service.
async fn systeme_stand_in(token: &str, current: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let items = json!({"items": [
        {"id": 1, "name": "old", "url": format!("https://old-name.trycloudflare.com/h/{token}"), "subscriptions": ["SALE_NEW"]},
        {"id": 2, "name": "current", "url": format!("{current}/h/{token}"), "subscriptions": ["CONTACT_CREATED"]},
        {"id": 3, "name": "crm", "url": "https://crm.example.com/hook", "subscriptions": ["SALE_NEW"]},
    ], "hasMore": false});
    let app = axum::Router::new().route(
        "/api/webhooks",
        axum::routing::get(move || {
            let items = items.clone();
            async move { axum::Json(items) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_report_shows_cadence_verdicts_and_where_systeme_io_points() {
    let dir = tempfile::tempdir().unwrap();
    // Started once to learn the default endpoint's token, then again with systeme.io's
    // stand-in knowing it.
    let first = start(dir.path(), None).await;
    let token = first.webhook_url.rsplit('/').next().unwrap().to_string();
    first.stop().await;
    let public = "https://hooks.example.com";
    let systeme = systeme_stand_in(&token, public).await;
    let running = app::start(app::ServeOptions {
        systeme_api: Some(systeme),
        tunnel: Some(format!("manual:{public}").parse().unwrap()),
        ..test_options(dir.path())
    })
    .await
    .unwrap();
    let api = Api::of(&running);
    let http = reqwest::Client::new();
    for name in ["sale-new", "sale-new-discounted", "contact-created"] {
        support::deliver(
            &http,
            &running.webhook_url,
            &fixture(&format!("systeme-settings/{name}")),
        )
        .await;
    }
    let health = api.json("/api/health").await;
    assert_eq!(
        health["systeme"]["key_set"], false,
        "no key: systeme.io not asked"
    );
    let endpoint = &health["endpoints"][0];
    assert_eq!(
        endpoint["public_webhook_url"],
        format!("{public}/h/{token}")
    );
    assert!(!endpoint["last_delivery_at"].is_null());
    let types = endpoint["types"].as_array().unwrap();
    let sale = types
        .iter()
        .find(|t| t["event_type"] == "SALE_NEW")
        .expect("SALE_NEW listed");
    assert!(
        sale["usual_gap_secs"].as_i64().is_some(),
        "two sales: a gap: {sale}"
    );
    assert!(
        sale["learned_silence_secs"].is_null(),
        "two teach no threshold"
    );
    // Signed fixtures with no secret set: `no_secret`, all three within the day.
    let verdicts = &endpoint["signatures_last_day"];
    assert_eq!(
        *verdicts,
        json!({"valid": 0, "invalid": 0, "unsigned": 0, "no_secret": 3}),
        "{verdicts}"
    );
    assert_eq!(
        health["rules"].as_array().unwrap().len(),
        4,
        "the four a new install watches"
    );

    let (status, _) = send(&api, "PUT", "/api/systeme", json!({"api_key": "test-key"})).await;
    assert_eq!(status, 200);
    let health = api.json("/api/health").await;
    assert_eq!(health["systeme"]["key_set"], true);
    assert!(
        health["systeme"]["error"].is_null(),
        "{}",
        health["systeme"]
    );
    let hooks = health["systeme"]["webhooks"].as_array().unwrap();
    let by_name = |name: &str| hooks.iter().find(|h| h["name"] == name).unwrap().clone();
    let old = by_name("old");
    assert_eq!(old["points_here"], false);
    assert!(
        old["problem"]
            .as_str()
            .unwrap()
            .contains("old-name.trycloudflare.com"),
        "{old}"
    );
    assert_eq!(old["endpoint_id"], endpoint["id"]);
    let current = by_name("current");
    assert_eq!(
        (current["points_here"].clone(), current["problem"].clone()),
        (json!(true), Value::Null)
    );
    let crm = by_name("crm");
    assert!(
        crm["endpoint_id"].is_null() && crm["problem"].is_null(),
        "not Hookscope's: not flagged"
    );
    running.stop().await;
}
