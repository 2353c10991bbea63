//! The security review's findings, each tried the way an attacker (or an unlucky browser)
//! would, against a real server: the API token reaching the webhook port, forwards that
//! loop back, cookies set by a chosen answer, imports past the store's limits, and the
//! modes of files that hold personal data.

use crate::support;

use std::time::{Duration, Instant};

use hookscope_core::Running;
use hookscope_core::app;
use hookscope_core::store::db::{self, Synchronous};
use serde_json::{Value, json};
use support::{Api, fixture, test_options};

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

async fn start(dir: &std::path::Path) -> (Running, Api) {
    let running = app::start(test_options(dir)).await.unwrap();
    let api = Api::of(&running);
    (running, api)
}

async fn patch_endpoint(api: &Api, running: &Running, body: Value) -> reqwest::Response {
    let endpoint = running.state.store.default_endpoint().unwrap();
    api.http
        .patch(format!("{}/api/endpoints/{}", api.base, endpoint.id))
        .bearer_auth(&api.token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// A local handler that counts what reaches it and keeps the last request's headers.
async fn handler() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<Vec<(String, String)>>>>,
) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = seen.clone();
    let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let kept = kept.clone();
        async move {
            let headers = request
                .headers()
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_string()))
                .collect();
            kept.lock().unwrap().push(headers);
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_token_is_never_stored_exported_or_forwarded() {
    let dir = tempfile::tempdir().unwrap();
    let (running, api) = start(dir.path()).await;
    let token = api.token.clone();
    let (base, seen) = handler().await;
    assert_eq!(
        patch_endpoint(&api, &running, json!({"forward_to": base}))
            .await
            .status(),
        200
    );
    let http = reqwest::Client::new();
    let cookie_name = &running.state.access.cookie_name;

    // What a browser sends on its own when it opens the webhook URL: the window's cookie
    // (cookies ignore ports), another install's, and the site's own.
    let sale = fixture("systeme-automation/sale-completed");
    let answer = http
        .post(&running.webhook_url)
        .header("content-type", "application/json")
        .header(
            "cookie",
            format!("theme=dark; {cookie_name}={token}; hookscope_token_1={token}x; last=1"),
        )
        .header("x-debug", format!("bearer {token}"))
        .body(sale.body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "the delivery itself is taken");
    let id = answer.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let event = api.json(&format!("/api/events/{id}")).await;
    let headers = event["headers"].to_string();
    assert!(!headers.contains(&token), "not stored: {headers}");
    assert!(
        headers.contains("theme=dark; last=1"),
        "the other cookies are kept: {headers}"
    );
    assert!(
        headers.contains("bearer [Hookscope API token removed]"),
        "{headers}"
    );
    let export = api.text("/api/export?format=ndjson").await;
    assert!(!export.contains(&token), "not exported");

    // The forward reaches the handler without it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the forward arrives");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let forwarded = seen.lock().unwrap()[0].clone();
    assert!(
        forwarded.iter().all(|(_, v)| !v.contains(&token)),
        "not forwarded: {forwarded:?}"
    );

    // Where it cannot be cut out of what is stored byte for byte, it is refused.
    let url = &running.webhook_url;
    for (what, request) in [
        ("query", http.post(format!("{url}?token={token}")).body("x")),
        ("sub-path", http.post(format!("{url}/{token}")).body("x")),
        (
            "body",
            http.post(url).body(format!("{{\"t\":\"{token}\"}}")),
        ),
        (
            "compressed body",
            http.post(url)
                .header("content-encoding", "gzip")
                .body(gzip(format!("leaked {token}").as_bytes())),
        ),
    ] {
        let answer = request.send().await.unwrap();
        assert_eq!(answer.status(), 400, "{what}");
        assert!(
            answer.text().await.unwrap().contains("API token"),
            "{what}: says why"
        );
    }
    let all = api.json("/api/events").await;
    assert_eq!(
        all["events"].as_array().unwrap().len(),
        1,
        "none of those were stored"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_to_its_own_webhook_url_is_refused_and_a_loop_ends_after_one_turn() {
    let dir = tempfile::tempdir().unwrap();
    let (running, api) = start(dir.path()).await;
    let own = running.webhook_url.clone();
    let port = running.ingest_addr.port();
    for target in [
        own.clone(),
        format!("http://localhost:{port}/h/other"),
        format!("http://[::1]:{port}/"),
        format!("http://0.0.0.0:{port}"),
    ] {
        let answer = patch_endpoint(&api, &running, json!({ "forward_to": target })).await;
        assert_eq!(answer.status(), 400, "{target}");
        assert!(
            answer
                .text()
                .await
                .unwrap()
                .contains("this Hookscope's own webhook address"),
            "{target}: says why"
        );
    }

    // Set where the API cannot see it (the command line writes the store directly, and a
    // name can lead back here): the loop ends by design.
    let endpoint = running.state.store.default_endpoint().unwrap();
    let looping = own.clone();
    running
        .state
        .store
        .change_endpoints(move |conn| {
            hookscope_core::store::endpoints::set_forward_to(conn, &endpoint.id, Some(&looping))
        })
        .await
        .unwrap();
    let first = support::deliver(
        &reqwest::Client::new(),
        &running.webhook_url,
        &fixture("systeme-automation/tag-added"),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let looped = loop {
        let events = api.json("/api/events").await["events"].clone();
        let events = events.as_array().unwrap();
        if let Some(back) = events.iter().find(|e| e["id"] != first.as_str()) {
            break back.clone();
        }
        assert!(Instant::now() < deadline, "the forward comes back once");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let forward = api
        .json(&format!("/api/events/{}", looped["id"].as_str().unwrap()))
        .await["forward"]
        .clone();
    assert_eq!(forward["state"], "failed", "{forward}");
    assert!(
        forward["error"].as_str().unwrap().contains("would loop"),
        "{forward}"
    );
    // Time for a runaway loop to show (it made ~50 events a second).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let events = api.json("/api/events").await["events"].clone();
    assert_eq!(
        events.as_array().unwrap().len(),
        2,
        "one delivery and one turn of the loop"
    );

    // Replays to this Hookscope are refused the same way.
    let replay = api
        .http
        .post(format!("{}/api/events/{first}/replay", api.base))
        .bearer_auth(&api.token)
        .json(&json!({ "url": own }))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 400);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chosen_answer_cannot_set_cookies() {
    let dir = tempfile::tempdir().unwrap();
    let (running, api) = start(dir.path()).await;
    for name in ["Set-Cookie", "set-cookie2"] {
        let answer = patch_endpoint(
            &api,
            &running,
            json!({"response": {"status": 200, "headers": [[name, "hookscope_token_1=x; Path=/"]]}}),
        )
        .await;
        assert_eq!(answer.status(), 400, "{name}");
        assert!(answer.text().await.unwrap().contains("sign-in cookie"));
    }
    running.stop().await;
}

#[test]
fn imports_meet_the_stores_limits_event_by_event() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = db::open_writer(&db::database_path(dir.path()), Synchronous::Normal).unwrap();
    let event = |id: &str, method: &str, body: &str| {
        json!({"id": id, "received_at": "2026-11-28T09:00:00Z", "endpoint": "ep",
               "method": method, "path": "/h/x", "body_text": body})
        .to_string()
    };
    let lines = [
        event("ok-1", "POST", "small"),
        event("big", "POST", &"x".repeat(2 * 1024 * 1024)),
        // Legal HTTP tokens may hold `$ ' | &` (the copied commands quote them); these are
        // not tokens at all.
        event("shell", "X$(touch f)", "small"),
        event("spaces", "PO ST", "small"),
        event("ok-2", "PATCH", "small"),
    ];
    let report =
        support::import_and_index(&mut conn, lines.join("\n").as_bytes(), 1024 * 1024).unwrap();
    assert_eq!(report.imported, 2, "the rest is imported");
    assert_eq!(report.refused, 3);
    let said = report.refusals.join("\n");
    assert!(
        said.contains("event #2 (\"big\") not imported: its body is 2097152 bytes, over this store's limit of 1048576"),
        "{said}"
    );
    assert!(
        said.contains(
            "event #3 (\"shell\") not imported: method \"X$(touch f)\" is not an HTTP method"
        ),
        "{said}"
    );
    assert!(said.contains("event #4 (\"spaces\")"), "{said}");
    let stored: Vec<String> = conn
        .prepare("SELECT id FROM deliveries ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(stored, ["ok-1", "ok-2"]);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_holding_captures_are_private_and_a_shared_folder_is_left_as_it_is() {
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let root = tempfile::tempdir().unwrap();

    // A folder Hookscope creates is private.
    let fresh = root.path().join("new/data");
    let (running, _) = start(&fresh).await;
    assert_eq!(mode(&fresh), 0o700);
    assert!(running.state.notices.is_empty());
    running.stop().await;

    // A folder that exists keeps its mode, the user is told, and the store is private.
    let shared = root.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (running, api) = start(&shared).await;
    assert_eq!(mode(&shared), 0o755, "left as it was");
    assert!(
        running
            .state
            .notices
            .iter()
            .any(|n| n.contains("can be opened by other users")),
        "{:?}",
        running.state.notices
    );
    let status = api.json("/api/status").await;
    assert!(status["notices"].to_string().contains("chmod 700"));
    support::deliver(
        &reqwest::Client::new(),
        &running.webhook_url,
        &fixture("systeme-automation/tag-added"),
    )
    .await;
    for file in [
        "hookscope.db",
        "hookscope.db-wal",
        "hookscope-derived.db",
        "hookscope-derived.db-wal",
        "hookscope.lock",
    ] {
        assert_eq!(mode(&shared.join(file)), 0o600, "{file}");
    }

    // Exports are private, also over a file that was readable by others.
    let database = db::database_path(&shared);
    running.state.store.caught_up(Duration::from_secs(10)).await;
    let out = root.path().join("export.json");
    std::fs::write(&out, b"old").unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o644)).unwrap();
    let count = hookscope_core::exchange::export::export_to_file(
        &database,
        &Default::default(),
        hookscope_core::exchange::export::Format::Json,
        &out,
        1 << 20,
    )
    .unwrap();
    assert_eq!(count, 1);
    assert_eq!(mode(&out), 0o600);
    running.stop().await;
}
