//! Who gets in: every API route refuses a missing or wrong token, a foreign `Host` (DNS
//! rebinding) and a foreign `Origin` (a web page's cross-site request), even with the right
//! token; none is served on the ingest port; the data folder is the user's alone.

use crate::support;

use std::os::unix::fs::PermissionsExt;

use reqwest::Method;
use support::{Api, start_server};

/// Every API route, with placeholders for its parameters.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/status"),
    ("GET", "/api/events"),
    ("GET", "/api/events/x"),
    ("GET", "/api/events/x/raw"),
    ("GET", "/api/events/x/forward"),
    ("GET", "/api/events/x/previous"),
    ("GET", "/api/diff?a=x&b=y"),
    ("POST", "/api/events/x/replay"),
    ("GET", "/api/events/x/replays"),
    ("POST", "/api/contacts/a%40b.c/replay"),
    ("POST", "/api/replays"),
    ("GET", "/api/contacts"),
    ("GET", "/api/contacts/a%40b.c"),
    ("DELETE", "/api/contacts/a%40b.c"),
    ("GET", "/api/contacts/a%40b.c/erasure"),
    ("GET", "/api/retention"),
    ("PUT", "/api/retention"),
    ("POST", "/api/retention/preview"),
    ("GET", "/api/follow"),
    ("PUT", "/api/follow"),
    ("DELETE", "/api/follow"),
    ("GET", "/api/shapes"),
    ("GET", "/api/shapes/sale"),
    ("GET", "/api/funnels"),
    ("GET", "/api/templates"),
    ("POST", "/api/test-events"),
    ("GET", "/api/systeme"),
    ("PUT", "/api/systeme"),
    ("GET", "/api/systeme/webhooks"),
    ("POST", "/api/endpoints/x/systeme"),
    ("GET", "/api/stream"),
    ("GET", "/api/health"),
    ("POST", "/api/health/probe"),
    ("GET", "/api/alerts"),
    ("POST", "/api/alerts/acknowledge"),
    ("GET", "/api/alert-rules"),
    ("POST", "/api/alert-rules"),
    ("DELETE", "/api/alert-rules/1"),
    ("GET", "/api/tunnel"),
    ("PUT", "/api/tunnel"),
    ("GET", "/api/export"),
    ("POST", "/api/import"),
    ("GET", "/api/endpoints"),
    ("POST", "/api/endpoints"),
    ("PATCH", "/api/endpoints/x"),
    ("DELETE", "/api/endpoints/x"),
    ("GET", "/api/no-such-route"),
];

/// The list above is the router's: a new route must be added to it.
#[test]
fn the_route_list_covers_the_router() {
    let source = include_str!("../src/http/api/mod.rs");
    let router = &source[source.find("pub fn router").unwrap()..];
    let router = &router[..router.find("\n}\n").unwrap()];
    let declared = router.matches(".route(").count() - 1; // `/` is the UI page
    let methods = router.matches("get(").count()
        + router.matches("post(").count()
        + router.matches("put(").count()
        + router.matches("patch(").count()
        + router.matches("delete(").count()
        - 1; // `get(index)`
    assert!(
        declared >= 24,
        "routes found in http/api/mod.rs: {declared}"
    );
    assert_eq!(
        ROUTES.len() - 1,
        methods,
        "every method of every API route is listed in ROUTES"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_strangers() {
    let dir = tempfile::tempdir().unwrap();
    let running = start_server(dir.path()).await;
    let api = Api::of(&running);
    let http = reqwest::Client::new();
    let port = running.ui_addr.port();
    let mut wrong = api.token.clone().into_bytes();
    wrong[0] = if wrong[0] == b'a' { b'b' } else { b'a' };
    let wrong = String::from_utf8(wrong).unwrap();
    let own = api.base.clone();
    let foreign_hosts = [
        "evil.example".to_string(),
        format!("evil.example:{port}"),
        format!("127.0.0.1.evil.example:{port}"),
        format!("127.0.0.2:{port}"),
        format!("localhost.:{port}"),
        String::new(),
    ];
    let foreign_origins = [
        "https://evil.example".to_string(),
        "null".to_string(),
        format!("http://127.0.0.1.evil.example:{port}"),
        format!("https://127.0.0.1:{port}"),
        format!("http://127.0.0.1:{}", port.wrapping_add(1)),
        "file://".to_string(),
    ];
    let mut checked = 0;
    for (method, path) in ROUTES {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let url = format!("{own}{path}");
        let request = || {
            http.request(method.clone(), &url)
                .header("content-type", "application/json")
                .body("{}")
        };

        let answer = request().send().await.unwrap();
        assert_eq!(answer.status(), 401, "{method} {path} without a token");
        assert!(
            answer
                .headers()
                .get("access-control-allow-origin")
                .is_none()
        );
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(body["code"], "unauthorized");
        for presented in [
            request().bearer_auth(&wrong),
            request().bearer_auth(&api.token[..api.token.len() - 1]),
            request().bearer_auth(""),
            request().header("authorization", format!("Basic {}", api.token)),
            request().header("cookie", format!("hookscope_token_{port}={wrong}")),
            request().header(
                "cookie",
                format!("hookscope_token_{}={}", port + 1, api.token),
            ),
            http.request(method.clone(), format!("{url}?token={}", api.token)),
        ] {
            let status = presented.send().await.unwrap().status();
            assert_eq!(
                status, 401,
                "{method} {path} with a wrong or misplaced token"
            );
            checked += 1;
        }
        for host in &foreign_hosts {
            let status = request()
                .bearer_auth(&api.token)
                .header("host", host)
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(
                status, 403,
                "{method} {path} for Host {host:?}, with the token"
            );
            checked += 1;
        }
        for origin in &foreign_origins {
            let answer = request()
                .bearer_auth(&api.token)
                .header("origin", origin)
                .send()
                .await
                .unwrap();
            assert_eq!(
                answer.status(),
                403,
                "{method} {path} from Origin {origin:?}, with the token"
            );
            assert!(
                answer
                    .headers()
                    .get("access-control-allow-origin")
                    .is_none()
            );
            checked += 1;
        }
        // With the token the route exists (a misspelt entry would meet the fallback).
        let answer = request().bearer_auth(&api.token).send().await.unwrap();
        // Only JSON answers are read: the live stream's never ends.
        let json = answer
            .headers()
            .get("content-type")
            .is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
        let exists = !json || {
            let body: serde_json::Value = answer.json().await.unwrap();
            !body["message"]
                .as_str()
                .is_some_and(|m| m.contains("no such API route"))
        };
        assert_eq!(
            exists,
            *path != "/api/no-such-route",
            "{method} {path} is a route (content-type JSON: {json})"
        );
        // The same path on the ingest port is nothing.
        let ingest = http
            .request(
                method.clone(),
                format!("http://{}{path}", running.ingest_addr),
            )
            .bearer_auth(&api.token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            ingest.status(),
            404,
            "{method} {path} is not on the ingest port"
        );
        checked += 1;
    }
    // A preflight from another site learns nothing.
    let preflight = http
        .request(Method::OPTIONS, format!("{own}/api/events"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "DELETE")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 403);
    assert!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    // The UI page and its assets are not served cross-origin either.
    for path in ["/", "/assets/index.js", "/favicon.ico"] {
        let status = http
            .get(format!("{own}{path}"))
            .header("host", "evil.example")
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 403, "{path} for a foreign Host");
    }
    // And the right token still works, from our own origin.
    let fine = api
        .get("/api/status")
        .header("origin", &own)
        .send()
        .await
        .unwrap();
    assert_eq!(fine.status(), 200);
    println!(
        "access: {} routes, {checked} refusals checked",
        ROUTES.len()
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_folder_and_store_are_the_users_alone() {
    let parent = tempfile::tempdir().unwrap();
    let data_dir = parent.path().join("data");
    let running = start_server(&data_dir).await;
    let http = reqwest::Client::new();
    let sale = support::fixture("systeme-settings/sale-new");
    support::deliver(&http, &running.webhook_url, &sale).await;
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data_dir), 0o700, "the data folder");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&data_dir).unwrap() {
        let path = entry.unwrap().path();
        let other_bits = mode(&path) & 0o077;
        assert_eq!(
            other_bits,
            0,
            "{} is readable by others: {:o}",
            path.display(),
            mode(&path)
        );
        files.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    files.sort();
    for expected in ["hookscope.db", "hookscope.db-shm", "hookscope.db-wal"] {
        assert!(
            files.iter().any(|f| f == expected),
            "{expected} in {files:?}"
        );
    }
    running.stop().await;
}
