//! Shared by the CLI's integration tests: `hookscope serve` as a child process on free
//! ports, and the URLs it printed.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_hookscope");

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// SIGKILL rounds: `HOOKSCOPE_KILL_ROUNDS` (`make soak` sets many), else `default`.
pub fn kill_rounds(default: u64) -> u64 {
    std::env::var("HOOKSCOPE_KILL_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// `hookscope serve` on `data_dir`, on free ports, with no tunnel; not started yet.
pub fn serve_command(data_dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .arg("serve")
        .env("HOOKSCOPE_DATA_DIR", data_dir)
        .env("HOOKSCOPE_INGEST", "127.0.0.1:0")
        .env("HOOKSCOPE_UI", "127.0.0.1:0")
        .env("HOOKSCOPE_TUNNEL", "off");
    command
}

/// A running `hookscope serve` and the two URLs it printed.
pub struct Serve {
    pub child: Child,
    pub webhook_url: String,
    pub ui_base: String,
    pub token: String,
    /// What it prints after the two URLs, line by line.
    pub lines: std::sync::mpsc::Receiver<String>,
}

impl Serve {
    /// Starts on free ports, the data dir given through the environment, no tunnel.
    pub fn start(data_dir: &Path) -> Serve {
        Serve::start_with(data_dir, &[])
    }

    pub fn start_with(data_dir: &Path, env: &[(&str, &Path)]) -> Serve {
        let mut child = serve_command(data_dir)
            .envs(env.iter().map(|(k, v)| (*k, *v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("hookscope starts");
        let stdout = child.stdout.take().unwrap();
        let (lines_tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if lines_tx.send(line.unwrap_or_default()).is_err() {
                    break;
                }
            }
        });
        let next = || {
            lines
                .recv_timeout(Duration::from_secs(20))
                .expect("serve prints its URLs within 20 s")
        };
        let webhook_line = next();
        let ui_line = next();
        let webhook_url = webhook_line
            .strip_prefix("Webhook URL: ")
            .unwrap_or_else(|| panic!("first line is the webhook URL: {webhook_line:?}"))
            .to_string();
        let ui_url = ui_line
            .strip_prefix("UI: ")
            .unwrap_or_else(|| panic!("second line is the UI URL: {ui_line:?}"))
            .to_string();
        let (ui_base, token) = ui_url
            .split_once("/?token=")
            .expect("UI URL carries a token");
        Serve {
            child,
            webhook_url,
            ui_base: ui_base.to_string(),
            token: token.to_string(),
            lines,
        }
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit; panics after `limit`.
    pub fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                started.elapsed() < limit,
                "hookscope exits within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// An answer of the API, with the token.
    async fn api_get(&self, path: &str) -> reqwest::Response {
        reqwest::Client::new()
            .get(format!("{}{path}", self.ui_base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
    }

    /// The live stream, connected.
    pub async fn stream(&self) -> reqwest::Response {
        self.api_get("/api/stream").await
    }

    /// A JSON answer of the API.
    pub async fn api_json(&self, path: &str) -> Value {
        self.api_get(path).await.json().await.unwrap()
    }

    pub async fn export_ndjson(&self) -> Vec<Value> {
        let text = self
            .api_get("/api/export?format=ndjson")
            .await
            .text()
            .await
            .unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads a live stream until `needle` is in it (`event: erased`, an event's id), `within`
/// at most (heartbeats keep a stream busy: the deadline is the whole wait's, not each
/// chunk's). What was heard.
pub async fn heard_on_stream(
    mut stream: reqwest::Response,
    needle: String,
    within: Duration,
) -> String {
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + within;
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, stream.chunk()).await {
        text.push_str(&String::from_utf8_lossy(&chunk));
        if text.contains(&needle) {
            break;
        }
    }
    text
}

/// `hookscope import` of a file that is not an export fails and names the event.
pub fn a_broken_import_is_refused(data_dir: &Path, scratch: &Path) {
    let garbage = scratch.join("garbage.json");
    std::fs::write(&garbage, "[{\"id\": 1}]").unwrap();
    let refused = Command::new(BIN)
        .args(["import", garbage.to_str().unwrap()])
        .env("HOOKSCOPE_DATA_DIR", data_dir)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{said}");
    assert!(
        said.contains("event #1"),
        "the refusal names the event: {said}"
    );
}
