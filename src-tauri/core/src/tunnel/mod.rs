//! Tunnels: a public URL for the ingest listener, started, watched and restarted by
//! Hookscope. Each provider runs until its tunnel ends; the [`supervise`] loop reports
//! the state, restarts with backoff and stops it on quit. A tunnel only ever points at the
//! tunnel's own ingest listener, never at the UI/API port.

mod bore;
mod cloudflared;
mod ngrok;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const DEFAULT_BORE_HOST: &str = "bore.pub";
const FIRST_RETRY: Duration = Duration::from_secs(1);
const LAST_RETRY: Duration = Duration::from_secs(30);
/// A tunnel that stayed up this long starts the next backoff from the beginning.
const STABLE: Duration = Duration::from_secs(60);

/// Which tunnel the user chose: `off`, `cloudflared`, `ngrok[:DOMAIN]`, `bore[:HOST]` or
/// `manual:URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunnelChoice {
    Off,
    Cloudflared,
    /// With the user's reserved domain, or a random one.
    Ngrok {
        domain: Option<String>,
    },
    Bore {
        host: String,
    },
    /// The user's own public base URL (Tailscale Funnel, a reverse proxy, ...).
    Manual {
        base: String,
    },
}

impl FromStr for TunnelChoice {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (kind, rest) = match text.split_once(':') {
            Some((kind, rest)) => (kind, Some(rest)),
            None => (text, None),
        };
        match (kind.to_ascii_lowercase().as_str(), rest) {
            ("off" | "none", None) => Ok(TunnelChoice::Off),
            ("cloudflared", None) => Ok(TunnelChoice::Cloudflared),
            ("bore", None) => Ok(TunnelChoice::Bore {
                host: DEFAULT_BORE_HOST.into(),
            }),
            ("bore", Some(host)) => host_name(host)
                .map(|host| TunnelChoice::Bore { host })
                .ok_or_else(|| {
                    format!("bore:{host}: give a host name or IP address, e.g. bore:bore.pub")
                }),
            ("ngrok", None) => Ok(TunnelChoice::Ngrok { domain: None }),
            ("ngrok", Some(domain)) if domain.trim().is_empty() => {
                Ok(TunnelChoice::Ngrok { domain: None })
            }
            ("ngrok", Some(domain)) => host_name(domain)
                .map(|domain| TunnelChoice::Ngrok {
                    domain: Some(domain),
                })
                .ok_or_else(|| {
                    format!("ngrok:{domain}: give your reserved domain, e.g. ngrok:hooks.ngrok.app")
                }),
            ("manual", Some(url)) => manual_base(url).map(|base| TunnelChoice::Manual { base }),
            ("manual", None) => Err(
                "manual needs your public base URL, e.g. manual:https://hooks.example.com".into(),
            ),
            _ => Err(format!(
                "unknown tunnel {text:?}: pick cloudflared, ngrok, ngrok:DOMAIN, bore, bore:HOST, manual:URL or off"
            )),
        }
    }
}

/// A bare host name or address, lower-cased.
fn host_name(text: &str) -> Option<String> {
    let host = text.trim();
    let valid = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.".contains(c));
    valid.then(|| host.to_ascii_lowercase())
}

/// `https://host[:port][/prefix]` without a trailing slash.
fn manual_base(url: &str) -> Result<String, String> {
    let url = url.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("{url:?} is not an http:// or https:// URL"))?;
    let host = rest.split('/').next().unwrap_or("");
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c));
    if !host_ok || url.contains(['?', '#', ' ']) {
        return Err(format!(
            "{url:?} is not a base URL like https://hooks.example.com"
        ));
    }
    Ok(url.to_string())
}

impl fmt::Display for TunnelChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TunnelChoice::Off => f.write_str("off"),
            TunnelChoice::Cloudflared => f.write_str("cloudflared"),
            TunnelChoice::Ngrok { domain: None } => f.write_str("ngrok"),
            TunnelChoice::Ngrok {
                domain: Some(domain),
            } => write!(f, "ngrok:{domain}"),
            TunnelChoice::Bore { host } => write!(f, "bore:{host}"),
            TunnelChoice::Manual { base } => write!(f, "manual:{base}"),
        }
    }
}

impl TunnelChoice {
    pub fn provider(&self) -> &'static str {
        match self {
            TunnelChoice::Off => "off",
            TunnelChoice::Cloudflared => "cloudflared",
            TunnelChoice::Ngrok { .. } => "ngrok",
            TunnelChoice::Bore { .. } => "bore",
            TunnelChoice::Manual { .. } => "manual",
        }
    }
}

/// Whether the cloudflared program can be found (it is the default tunnel when it can).
pub fn cloudflared_available(options: &TunnelOptions) -> bool {
    cloudflared::find_program(options).is_some()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum TunnelState {
    Off,
    Starting,
    Up,
    Reconnecting,
    Failed,
}

/// What the UI header and `Public URL:` line show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TunnelStatus {
    /// Grows with every change (and across restarts).
    pub revision: u64,
    /// The choice as `hookscope serve --tunnel` takes it.
    pub choice: String,
    pub provider: &'static str,
    pub state: TunnelState,
    /// Public base URL (no path); webhook URLs are this + `/h/TOKEN`.
    pub public_url: Option<String>,
    /// Why it is reconnecting or failed.
    pub reason: Option<String>,
    /// What the user can do about it.
    pub hint: Option<String>,
    /// The public URL before the last change: systeme.io still points there.
    pub previous_url: Option<String>,
}

impl TunnelStatus {
    fn new(choice: &TunnelChoice, state: TunnelState) -> TunnelStatus {
        TunnelStatus {
            revision: 0,
            choice: choice.to_string(),
            provider: choice.provider(),
            state,
            public_url: None,
            reason: None,
            hint: None,
            previous_url: None,
        }
    }

    /// systeme.io's Settings webhooks accept only HTTPS URLs.
    pub fn insecure(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("http://"))
    }
}

/// Every change bumps `revision`, so a viewer holding two answers (an API reply and a
/// stream event) keeps the newer one.
fn update(status: &watch::Sender<TunnelStatus>, change: impl FnOnce(&mut TunnelStatus)) {
    status.send_modify(|s| {
        change(s);
        s.revision += 1;
    });
}

fn reset(status: &watch::Sender<TunnelStatus>, choice: &TunnelChoice, state: TunnelState) {
    update(status, |s| {
        *s = TunnelStatus {
            revision: s.revision,
            ..TunnelStatus::new(choice, state)
        }
    });
}

/// What a provider's tunnel writes itself about the sender it carries.
fn reported_by(provider: &str) -> crate::capture::sender::Reported {
    use crate::capture::sender::Reported;
    match provider {
        "cloudflared" => Reported::CloudflareHeader,
        "ngrok" => Reported::LastForwardedFor,
        // bore carries plain TCP; a manual URL or none has no tunnel of ours here.
        _ => Reported::Nothing,
    }
}

/// How a provider's run ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// Asked to stop.
    Stopped,
    /// Worth retrying (network, process exit).
    Lost(String),
    /// Retrying will not help until the user acts.
    Failed { reason: String, hint: String },
}

/// How a running provider tells the supervisor what is going on.
pub(crate) struct Report<'a> {
    status: &'a watch::Sender<TunnelStatus>,
    last_url: &'a mut Option<String>,
}

impl Report<'_> {
    pub(crate) fn up(&mut self, url: &str) {
        let changed_from = self
            .last_url
            .as_deref()
            .filter(|old| *old != url)
            .map(str::to_string);
        *self.last_url = Some(url.to_string());
        update(self.status, |s| {
            s.state = TunnelState::Up;
            s.reason = None;
            s.hint = None;
            if changed_from.is_some() {
                s.previous_url = changed_from;
            }
            s.public_url = Some(url.to_string());
        });
    }

    /// Still running, but not reachable right now (the provider reconnects by itself).
    pub(crate) fn reconnecting(&mut self, reason: &str) {
        update(self.status, |s| {
            s.state = TunnelState::Reconnecting;
            s.reason = Some(reason.to_string());
        });
    }
}

/// Where tunnel programs are found, and the credentials given on the command line or
/// in the environment (they take precedence over the ones stored in settings).
#[derive(Clone, Default)]
pub struct TunnelOptions {
    /// The cloudflared executable; `None` looks for `cloudflared` on `PATH`.
    pub cloudflared: Option<PathBuf>,
    pub ngrok_authtoken: Option<String>,
    /// ngrok's service address (`host:port`), for self-hosted or test setups.
    pub ngrok_server: Option<String>,
}

impl fmt::Debug for TunnelOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TunnelOptions")
            .field("cloudflared", &self.cloudflared)
            .field(
                "ngrok_authtoken",
                &self.ngrok_authtoken.as_ref().map(|_| "(set)"),
            )
            .field("ngrok_server", &self.ngrok_server)
            .finish()
    }
}

/// A supervised tunnel. Dropping it does not stop it: call [`Tunnel::stop`].
pub struct Tunnel {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Tunnel {
    /// Stops the tunnel and waits until its process (if any) is gone.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// Starts `choice` towards `target` (the tunnel's ingest listener), reporting on
/// `status`. `last_url` is the public URL the user last saw, so that a different one is
/// announced as a change.
pub fn supervise(
    choice: TunnelChoice,
    target: SocketAddr,
    options: TunnelOptions,
    last_url: Option<String>,
    status: watch::Sender<TunnelStatus>,
) -> Tunnel {
    let initial = if choice == TunnelChoice::Off {
        TunnelState::Off
    } else {
        TunnelState::Starting
    };
    reset(&status, &choice, initial);
    let mut last_url = last_url;
    // A URL of the user's own is up at once: whoever chose it (the window, the API) gets it
    // back in the answer, and a check asked for right after finds it.
    if let TunnelChoice::Manual { base } = &choice {
        Report {
            status: &status,
            last_url: &mut last_url,
        }
        .up(base);
    }
    let stop = CancellationToken::new();
    let task = tokio::spawn(run(choice, target, options, last_url, status, stop.clone()));
    Tunnel { stop, task }
}

/// The one tunnel of a running Hookscope, switchable while it runs. Its status channel
/// outlives each tunnel, so viewers keep one subscription across switches.
pub struct Tunnels {
    target: SocketAddr,
    options: TunnelOptions,
    status: watch::Sender<TunnelStatus>,
    current: tokio::sync::Mutex<Option<Tunnel>>,
    stored_ngrok_authtoken: std::sync::Mutex<Option<String>>,
}

impl Tunnels {
    pub fn new(target: SocketAddr, options: TunnelOptions) -> Tunnels {
        // Revisions start at the clock, so they keep growing across restarts too.
        let initial = TunnelStatus {
            revision: crate::timefmt::now_micros().max(0) as u64,
            ..TunnelStatus::new(&TunnelChoice::Off, TunnelState::Off)
        };
        let (status, _) = watch::channel(initial);
        Tunnels {
            target,
            options,
            status,
            current: tokio::sync::Mutex::new(None),
            stored_ngrok_authtoken: std::sync::Mutex::new(None),
        }
    }

    pub fn options(&self) -> TunnelOptions {
        self.options.clone()
    }

    /// The tunnel's ingest listener: where every tunnel points.
    pub fn target(&self) -> SocketAddr {
        self.target
    }

    pub fn status(&self) -> TunnelStatus {
        self.status.borrow().clone()
    }

    /// What the tunnel chosen now reports about a delivery's sender.
    pub fn reported_sender(&self) -> crate::capture::sender::Reported {
        reported_by(self.status.borrow().provider)
    }

    pub fn subscribe(&self) -> watch::Receiver<TunnelStatus> {
        self.status.subscribe()
    }

    /// Stops the current tunnel (if any) and starts `choice`.
    pub async fn switch(&self, choice: TunnelChoice, last_url: Option<String>) {
        let mut options = self.options.clone();
        let stored = self
            .stored_ngrok_authtoken
            .lock()
            .expect("token lock")
            .clone();
        options.ngrok_authtoken = options.ngrok_authtoken.or(stored);
        let mut current = self.current.lock().await;
        if let Some(tunnel) = current.take() {
            tunnel.stop().await;
        }
        *current = Some(supervise(
            choice,
            self.target,
            options,
            last_url,
            self.status.clone(),
        ));
    }

    /// The authtoken kept in settings; one given on the command line or in the
    /// environment wins over it.
    pub fn set_stored_ngrok_authtoken(&self, authtoken: Option<String>) {
        *self.stored_ngrok_authtoken.lock().expect("token lock") = authtoken;
    }

    /// Whether an ngrok tunnel would have an authtoken (never the token itself).
    pub fn has_ngrok_authtoken(&self) -> bool {
        self.options.ngrok_authtoken.is_some()
            || self
                .stored_ngrok_authtoken
                .lock()
                .expect("token lock")
                .is_some()
    }

    pub async fn stop(&self) {
        if let Some(tunnel) = self.current.lock().await.take() {
            tunnel.stop().await;
        }
        reset(&self.status, &TunnelChoice::Off, TunnelState::Off);
    }
}

async fn run(
    choice: TunnelChoice,
    target: SocketAddr,
    options: TunnelOptions,
    mut last_url: Option<String>,
    status: watch::Sender<TunnelStatus>,
    stop: CancellationToken,
) {
    let mut retry = FIRST_RETRY;
    loop {
        let started = Instant::now();
        let mut report = Report {
            status: &status,
            last_url: &mut last_url,
        };
        let ended = match &choice {
            TunnelChoice::Off => {
                stop.cancelled().await;
                Ended::Stopped
            }
            // Up since `supervise` said so; nothing runs for it here.
            TunnelChoice::Manual { .. } => {
                stop.cancelled().await;
                Ended::Stopped
            }
            TunnelChoice::Bore { host } => bore::run(host, target, &mut report, &stop).await,
            TunnelChoice::Ngrok { domain } => {
                ngrok::run(domain.as_deref(), &options, target, &mut report, &stop).await
            }
            TunnelChoice::Cloudflared => {
                cloudflared::run(&options, target, &mut report, &stop).await
            }
        };
        match ended {
            Ended::Stopped => return,
            Ended::Failed { reason, hint } => {
                tracing::warn!(tunnel = %choice, %reason, "tunnel failed");
                update(&status, |s| {
                    s.state = TunnelState::Failed;
                    s.reason = Some(reason);
                    s.hint = Some(hint);
                });
                stop.cancelled().await;
                return;
            }
            Ended::Lost(reason) => {
                if started.elapsed() > STABLE {
                    retry = FIRST_RETRY;
                }
                tracing::warn!(tunnel = %choice, %reason, retry_in = ?retry, "tunnel lost; restarting");
                update(&status, |s| {
                    s.state = TunnelState::Reconnecting;
                    s.reason = Some(format!("{reason}; retrying in {} s", retry.as_secs()));
                });
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(retry) => {}
                }
                retry = (retry * 2).min(LAST_RETRY);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_tunnel_vouches_only_for_the_header_it_writes() {
        use crate::capture::sender::Reported;
        for (choice, expected) in [
            ("cloudflared", Reported::CloudflareHeader),
            ("ngrok", Reported::LastForwardedFor),
            ("ngrok:hooks.ngrok.app", Reported::LastForwardedFor),
            ("bore", Reported::Nothing),
            ("bore:my-server.example", Reported::Nothing),
            ("manual:https://hooks.example.com", Reported::Nothing),
            ("off", Reported::Nothing),
        ] {
            let choice: TunnelChoice = choice.parse().unwrap();
            assert_eq!(reported_by(choice.provider()), expected, "{choice}");
        }
    }

    #[test]
    fn choices_parse_and_print_back() {
        for (text, expected) in [
            ("off", TunnelChoice::Off),
            ("cloudflared", TunnelChoice::Cloudflared),
            ("ngrok", TunnelChoice::Ngrok { domain: None }),
            (
                "NGROK:Hooks.ngrok.app",
                TunnelChoice::Ngrok {
                    domain: Some("hooks.ngrok.app".into()),
                },
            ),
            (
                "bore",
                TunnelChoice::Bore {
                    host: "bore.pub".into(),
                },
            ),
            (
                "bore:My-Server.example",
                TunnelChoice::Bore {
                    host: "my-server.example".into(),
                },
            ),
            (
                "manual:https://hooks.example.com/",
                TunnelChoice::Manual {
                    base: "https://hooks.example.com".into(),
                },
            ),
            (
                "manual:http://10.0.0.2:8080/in",
                TunnelChoice::Manual {
                    base: "http://10.0.0.2:8080/in".into(),
                },
            ),
        ] {
            let parsed: TunnelChoice = text.parse().unwrap();
            assert_eq!(parsed, expected, "{text}");
            assert_eq!(
                parsed.to_string().parse::<TunnelChoice>().unwrap(),
                parsed,
                "round trip of {text}"
            );
        }
    }

    #[test]
    fn bad_choices_say_what_to_write() {
        for (text, needle) in [
            ("teleport", "unknown tunnel"),
            ("bore:", "give a host"),
            ("bore:evil/host", "give a host"),
            ("manual", "public base URL"),
            ("manual:ftp://x", "not an http"),
            ("manual:https://x.example/?a=1", "not a base URL"),
            ("ngrok:bad/domain", "reserved domain"),
        ] {
            let error = text.parse::<TunnelChoice>().unwrap_err();
            assert!(error.contains(needle), "{text}: {error}");
        }
    }

    #[tokio::test]
    async fn manual_is_up_at_once_and_announces_a_changed_url() {
        let target = "127.0.0.1:9".parse().unwrap();
        let choice: TunnelChoice = "manual:https://new.example".parse().unwrap();
        let (sender, mut status) =
            watch::channel(TunnelStatus::new(&TunnelChoice::Off, TunnelState::Off));
        let tunnel = supervise(
            choice,
            target,
            TunnelOptions::default(),
            Some("https://old.example".into()),
            sender,
        );
        // Up as `supervise` returns, before its task has run: an answer to the choice, or a
        // probe asked for right after it, finds the URL.
        let up = status.borrow_and_update().clone();
        assert_eq!(up.state, TunnelState::Up);
        assert_eq!(up.public_url.as_deref(), Some("https://new.example"));
        assert_eq!(up.previous_url.as_deref(), Some("https://old.example"));
        assert!(!up.insecure());
        tunnel.stop().await;
    }
}
