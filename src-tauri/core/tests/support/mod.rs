//! Shared by the core's integration tests: fixtures as they are on disk, and a real server
//! on 127.0.0.1:0 with a temporary data directory.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use hookscope_core::app::{self, DEFAULT_MAX_BODY, Running, ServeOptions};
use hookscope_core::http::listener::ListenerLimits;
use hookscope_core::store::db::Synchronous;
use hookscope_core::tunnel::TunnelChoice;

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// A wire-exact delivery from `fixtures/`.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// `systeme-automation/sale-completed`
    pub name: String,
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

pub fn fixture(name: &str) -> Fixture {
    all_fixtures()
        .into_iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no fixture {name}"))
}

pub fn all_fixtures() -> Vec<Fixture> {
    let mut out = Vec::new();
    for family in ["systeme-automation", "systeme-settings", "generic"] {
        let dir = fixtures_dir().join(family);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e != "headers"))
            .collect();
        files.sort();
        for body_path in files {
            let stem = body_path.file_stem().unwrap().to_str().unwrap().to_string();
            let headers_text = std::fs::read_to_string(body_path.with_extension("headers"))
                .unwrap_or_else(|_| panic!("{} has a headers file", body_path.display()));
            let headers = hookscope_core::capture::headers_file::parse(&headers_text);
            out.push(Fixture {
                name: format!("{family}/{stem}"),
                body: std::fs::read(&body_path).unwrap(),
                headers,
            });
        }
    }
    assert!(out.len() >= 20, "the fixture set is complete");
    out
}

pub async fn start_server(data_dir: &Path) -> Running {
    start_with_limit(data_dir, DEFAULT_MAX_BODY.bytes()).await
}

pub async fn start_with_limit(data_dir: &Path, max_body: usize) -> Running {
    let max_body = hookscope_core::app::BodyLimit::new(max_body).unwrap();
    let options = ServeOptions {
        max_body,
        ..test_options(data_dir)
    };
    app::start(options)
        .await
        .expect("the server starts on free ports")
}

/// Free ports, a temp data dir, no tunnel.
pub fn test_options(data_dir: &Path) -> ServeOptions {
    ServeOptions {
        data_dir: data_dir.to_path_buf(),
        ingest: "127.0.0.1:0".parse().unwrap(),
        ui: "127.0.0.1:0".parse().unwrap(),
        max_body: DEFAULT_MAX_BODY,
        synchronous: Synchronous::Full,
        tunnel: Some(TunnelChoice::Off),
        tunnel_options: Default::default(),
        proxy: None,
        systeme_api: None,
        forward: Default::default(),
        ingest_limits: Default::default(),
        ui_limits: ListenerLimits::ui_default(),
        sync: None,
        follow: None,
        sync_timing: Default::default(),
        alert_webhook: None,
        alert_retry: Default::default(),
        alert_check_every: hookscope_core::app::DEFAULT_ALERT_CHECK_EVERY,
        probe_timing: Default::default(),
    }
}

/// A client for one running server's API, with its token.
pub struct Api {
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
}

impl Api {
    pub fn of(running: &Running) -> Api {
        let (base, token) = running.ui_url.split_once("/?token=").unwrap();
        Api {
            base: base.to_string(),
            token: token.to_string(),
            http: reqwest::Client::new(),
        }
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    pub async fn json(&self, path: &str) -> serde_json::Value {
        self.ok(path).await.json().await.unwrap()
    }

    /// The answer's text (an NDJSON export, say).
    pub async fn text(&self, path: &str) -> String {
        self.ok(path).await.text().await.unwrap()
    }

    async fn ok(&self, path: &str) -> reqwest::Response {
        let response = self.get(path).send().await.unwrap();
        assert!(
            response.status().is_success(),
            "GET {path} answered {}",
            response.status()
        );
        response
    }
}

/// Posts a fixture to a webhook URL; returns the stored event id from the acknowledgement.
pub async fn deliver(http: &reqwest::Client, url: &str, fixture: &Fixture) -> String {
    let mut request = http.post(url).body(fixture.body.clone());
    for (name, value) in &fixture.headers {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "{} is acknowledged", fixture.name);
    let ack: serde_json::Value = response.json().await.unwrap();
    ack["id"]
        .as_str()
        .expect("the ack names the event")
        .to_string()
}

/// Imports an export into the store at `conn` and derives what it brought, as the command
/// line does when no Hookscope runs on the folder.
pub fn import_and_index(
    conn: &mut hookscope_core::store::db::Connection,
    input: &[u8],
    max_body: usize,
) -> hookscope_core::Result<hookscope_core::exchange::import::ImportReport> {
    let report = hookscope_core::exchange::import::import(conn, input, max_body)?;
    hookscope_core::store::indexer::run_to_end(conn, max_body, |_, _| {})?;
    Ok(report)
}

/// Every read a window or script makes of derived state: events with their derived
/// fields, contacts, each contact's card and timeline, shapes, funnels, searches.
pub async fn every_answer(api: &Api) -> serde_json::Value {
    let events = api.json("/api/events?limit=500").await;
    let contacts = api.json("/api/contacts?limit=500").await;
    let mut cards = serde_json::Map::new();
    let mut timelines = serde_json::Map::new();
    for contact in contacts["contacts"].as_array().unwrap() {
        let email = contact["email"].as_str().unwrap();
        let encoded = urlencoding(email);
        cards.insert(
            email.into(),
            api.json(&format!("/api/contacts/{encoded}")).await,
        );
        timelines.insert(
            email.into(),
            api.json(&format!("/api/events?email={encoded}&limit=500"))
                .await,
        );
    }
    let shapes = api.json("/api/shapes").await;
    let mut each_shape = serde_json::Map::new();
    for shape in shapes["shapes"].as_array().unwrap() {
        let event_type = shape["event_type"].as_str().unwrap();
        each_shape.insert(
            event_type.into(),
            api.json(&format!("/api/shapes/{event_type}")).await,
        );
    }
    let mut searches = serde_json::Map::new();
    for q in ["blog", "marie", "tag", "créer", "EUR", "webinar"] {
        searches.insert(
            q.into(),
            api.json(&format!("/api/events?q={}&limit=500", urlencoding(q)))
                .await,
        );
    }
    let drifted = api.json("/api/events?drift=true&limit=500").await;
    let funnels = api.json("/api/funnels").await;
    let mut status = api.json("/api/status").await;
    // What changes across restarts whatever the store holds.
    for volatile in [
        "ingest",
        "webhook_url",
        "tunnel",
        "sqlite_memory_bytes",
        "notices",
    ] {
        status[volatile] = serde_json::Value::Null;
    }
    // A position, not what is stored: after the newest deliveries are forgotten it stays
    // past them, where a reindex stops at the newest kept. `behind` is still compared.
    status["indexing"]["through"] = serde_json::Value::Null;
    serde_json::json!({
        "events": events, "contacts": contacts, "cards": cards, "timelines": timelines,
        "shapes": shapes, "each_shape": each_shape, "searches": searches,
        "drifted": drifted, "funnels": funnels, "status": status,
    })
}

pub fn urlencoding(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The JSON paths where two answers differ, with both values: what an assertion on two
/// whole answer sets prints, so a mismatch says where it is.
pub fn differences(left: &serde_json::Value, right: &serde_json::Value) -> Vec<String> {
    use serde_json::Value;
    fn walk(path: String, left: &Value, right: &Value, out: &mut Vec<String>) {
        match (left, right) {
            (Value::Object(l), Value::Object(r)) => {
                for key in l.keys().chain(r.keys().filter(|k| !l.contains_key(*k))) {
                    let (a, b) = (
                        l.get(key).unwrap_or(&Value::Null),
                        r.get(key).unwrap_or(&Value::Null),
                    );
                    walk(format!("{path}.{key}"), a, b, out);
                }
            }
            (Value::Array(l), Value::Array(r)) if l.len() == r.len() => {
                for (i, (a, b)) in l.iter().zip(r).enumerate() {
                    walk(format!("{path}[{i}]"), a, b, out);
                }
            }
            _ if left != right => out.push(format!("{path}: {left} != {right}")),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(String::new(), left, right, &mut out);
    out
}

/// Two answer sets are equal, or the message names every path where they differ.
#[track_caller]
pub fn assert_same_answers(left: &serde_json::Value, right: &serde_json::Value, what: &str) {
    let diffs = differences(left, right);
    assert!(diffs.is_empty(), "{what}:\n{}", diffs.join("\n"));
}
