//! cloudflared quick tunnels (HTTPS, no account). Hookscope runs the `cloudflared`
//! program and learns the public hostname and readiness from its metrics server
//! (`/quicktunnel`, `/ready`) rather than by reading its log.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use super::{Ended, Report, TunnelOptions};

/// How long a fresh cloudflared may take to get its quick tunnel.
const START_TIMEOUT: Duration = Duration::from_secs(60);
const POLL_STARTING: Duration = Duration::from_millis(250);
const POLL_UP: Duration = Duration::from_secs(2);

const INSTALL_HINT: &str = "install cloudflared (https://developers.cloudflare.com/cloudflare-one/connections/connect-networks/downloads/) or pick another tunnel";

#[derive(Deserialize)]
struct QuickTunnel {
    hostname: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Readiness {
    ready_connections: u32,
}

pub(super) async fn run(
    options: &TunnelOptions,
    target: SocketAddr,
    report: &mut Report<'_>,
    stop: &CancellationToken,
) -> Ended {
    let Some(program) = find_program(options) else {
        return Ended::Failed {
            reason: "cloudflared not found".into(),
            hint: INSTALL_HINT.into(),
        };
    };
    let metrics = match free_loopback_port() {
        Ok(addr) => addr,
        Err(error) => {
            return Ended::Lost(format!("no free port for cloudflared's metrics: {error}"));
        }
    };
    let mut command = Command::new(&program);
    command
        .args(["tunnel", "--url", &format!("http://{target}")])
        .args(["--metrics", &metrics.to_string(), "--no-autoupdate"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(target_os = "linux")]
    // SAFETY: prctl is async-signal-safe and touches only the child being set up.
    unsafe {
        // Should Hookscope itself be killed, cloudflared goes too (no orphan tunnel).
        // The signal follows the spawning thread: a runtime worker, alive as long as we are.
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            return Ended::Failed {
                reason: format!(
                    "cloudflared ({}) could not start: {error}",
                    program.display()
                ),
                hint: INSTALL_HINT.into(),
            };
        }
    };
    let mut log = LastLogLine::follow(&mut child);

    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("a plain HTTP client builds");
    let base = format!("http://{metrics}");
    let started = Instant::now();
    let mut shown_up = false;
    let mut ever_up = false;
    loop {
        let pause = if ever_up { POLL_UP } else { POLL_STARTING };
        tokio::select! {
            _ = stop.cancelled() => {
                end(&mut child).await;
                return Ended::Stopped;
            }
            exit = child.wait() => {
                let how = exit.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                log.finish().await;
                return Ended::Lost(format!("cloudflared stopped ({how}){}", log.said()));
            }
            _ = tokio::time::sleep(pause) => {}
        }
        match probe(&http, &base).await {
            Some(hostname) if !shown_up => {
                report.up(&format!("https://{hostname}"));
                shown_up = true;
                ever_up = true;
            }
            Some(_) => {}
            None if shown_up => {
                report.reconnecting(
                    "cloudflared lost its connection to Cloudflare and is reconnecting",
                );
                shown_up = false;
            }
            None if !ever_up && started.elapsed() > START_TIMEOUT => {
                end(&mut child).await;
                log.finish().await;
                return Ended::Lost(format!(
                    "cloudflared got no quick tunnel within {} s (is this machine online?){}",
                    START_TIMEOUT.as_secs(),
                    log.said()
                ));
            }
            None => {}
        }
    }
}

/// The quick tunnel's hostname once cloudflared has a live connection to the edge.
async fn probe(http: &reqwest::Client, base: &str) -> Option<String> {
    async fn get<T: serde::de::DeserializeOwned>(http: &reqwest::Client, url: String) -> Option<T> {
        let response = http.get(url).send().await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        serde_json::from_slice(&response.bytes().await.ok()?).ok()
    }
    let ready: Readiness = get(http, format!("{base}/ready")).await?;
    if ready.ready_connections == 0 {
        return None;
    }
    let tunnel: QuickTunnel = get(http, format!("{base}/quicktunnel")).await?;
    Some(tunnel.hostname).filter(|h| !h.is_empty())
}

async fn end(child: &mut Child) {
    let _ = child.start_kill();
    let _ = child.wait().await;
}

/// cloudflared logs to stderr; its last line explains a failure better than an exit code.
struct LastLogLine {
    line: Arc<Mutex<String>>,
    reader: Option<tokio::task::JoinHandle<()>>,
}

impl LastLogLine {
    fn follow(child: &mut Child) -> LastLogLine {
        let line = Arc::new(Mutex::new(String::new()));
        let reader = child.stderr.take().map(|stderr| {
            let line = line.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(next)) = lines.next_line().await {
                    tracing::debug!(target: "cloudflared", "{next}");
                    *line.lock().expect("log line lock") = next.trim().chars().take(300).collect();
                }
            })
        });
        LastLogLine { line, reader }
    }

    /// Once cloudflared has exited: reads what it wrote last, which may still be in the
    /// pipe. A child of its own holding the pipe open must not hold up the report.
    async fn finish(&mut self) {
        if let Some(reader) = self.reader.take() {
            let _ = tokio::time::timeout(Duration::from_secs(1), reader).await;
        }
    }

    /// `": <last line>"`, or nothing when cloudflared said nothing.
    fn said(&self) -> String {
        let line = self.line.lock().expect("log line lock");
        if line.is_empty() {
            String::new()
        } else {
            format!(": {line}")
        }
    }
}

pub(super) fn find_program(options: &TunnelOptions) -> Option<PathBuf> {
    if let Some(path) = &options.cloudflared {
        return path.is_file().then(|| path.clone());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("cloudflared"))
        .find(|candidate| candidate.is_file())
}

fn free_loopback_port() -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    listener.local_addr()
}
