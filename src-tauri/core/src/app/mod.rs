//! Starting and stopping Hookscope: open the store, bind the listeners (ingest for the
//! tunnel, UI/API on loopback), serve until asked to stop, then drain: in-flight
//! deliveries finish, the writer commits what it holds, and only then does it return.

pub mod announce;
mod config;
mod start;
mod tasks;

pub use config::{ServeConfig, blank_env_is_unset};
pub use start::{lock_data_dir, start};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

pub use crate::http::state::AppState;

pub use crate::capture::body::BodyLimit;
use crate::delivery::follow::FollowTarget;
use crate::delivery::forward::ForwardPolicy;
use crate::error::{Error, Result};
use crate::exchange::sync_protocol::SyncTiming;
use crate::http::listener::ListenerLimits;
use crate::service::alert_webhook::AlertRetry;
use crate::service::probe::ProbeTiming;
use crate::store::db::Synchronous;
use crate::tunnel::{TunnelChoice, TunnelOptions, TunnelState};

pub const DEFAULT_MAX_BODY: BodyLimit = BodyLimit::DEFAULT;
/// Fixed defaults so the webhook URL pasted into systeme.io stays valid across restarts.
pub const DEFAULT_INGEST: &str = "127.0.0.1:4747";
pub const DEFAULT_UI: &str = "127.0.0.1:4748";
/// Silences are looked for this often, so an alert comes within a minute of its cause.
pub const DEFAULT_ALERT_CHECK_EVERY: Duration = Duration::from_secs(15);
/// How long a stop waits for open connections before closing them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub data_dir: PathBuf,
    pub ingest: SocketAddr,
    pub ui: SocketAddr,
    pub max_body: BodyLimit,
    pub synchronous: Synchronous,
    /// The tunnel for this run, remembered for the next; `None` uses the remembered one
    /// (first run: cloudflared when it is installed, else none).
    pub tunnel: Option<TunnelChoice>,
    pub tunnel_options: TunnelOptions,
    /// A loopback address for a tunnel or reverse proxy you run yourself
    /// (`HOOKSCOPE_PROXY`): there the last `X-Forwarded-For` entry (the one the proxy
    /// appends) is taken as the sender and checked. `None`: no such listener.
    pub proxy: Option<SocketAddr>,
    /// systeme.io's API base (`HOOKSCOPE_SYSTEME_API`); `None`: the real one.
    pub systeme_api: Option<String>,
    /// Retries and timeout of forwarding to endpoints' targets.
    pub forward: ForwardPolicy,
    /// Timeouts and connection limits of the ingest port.
    pub ingest_limits: ListenerLimits,
    /// Timeouts and connection limits of the UI port (its body limits are not used).
    pub ui_limits: ListenerLimits,
    /// A loopback address for the sync listener (`HOOKSCOPE_SYNC`): this install is a
    /// relay that followers pull from. `None`: no such listener.
    pub sync: Option<SocketAddr>,
    /// A relay to follow from now on (`HOOKSCOPE_FOLLOW`, `HOOKSCOPE_FOLLOW_TOKEN`),
    /// remembered; `None`: the remembered one, if any.
    pub follow: Option<FollowTarget>,
    /// The sync protocol's clock: a relay's heartbeat, a follower's deadlines and pauses.
    pub sync_timing: SyncTiming,
    /// Where raised alerts are POSTed (`HOOKSCOPE_ALERT_WEBHOOK`), if anywhere.
    pub alert_webhook: Option<String>,
    /// How the alert webhook is retried.
    pub alert_retry: AlertRetry,
    /// How often silences are looked for (an alert is raised within this of its cause).
    pub alert_check_every: Duration,
    /// How often and how patiently the public URL is probed.
    pub probe_timing: ProbeTiming,
}

/// The platform's data directory for Hookscope (`~/.local/share/hookscope` on Linux).
pub fn default_data_dir() -> Result<PathBuf> {
    directories::ProjectDirs::from("io", "Hookscope", "hookscope")
        .map(|dirs| dirs.data_dir().to_path_buf())
        .ok_or_else(|| {
            Error::Invalid("no home directory to keep data in: set HOOKSCOPE_DATA_DIR".into())
        })
}

impl ServeOptions {
    /// The settings `hookscope serve` takes, from the environment alone (the desktop app):
    /// see [`ServeConfig`].
    pub fn from_env() -> Result<ServeOptions> {
        ServeConfig::from_env()?.options()
    }

    /// Every limit and timing at its default, for the fields a configuration does not set.
    fn defaults() -> ServeOptions {
        ServeOptions {
            data_dir: PathBuf::new(),
            ingest: DEFAULT_INGEST.parse().expect("a socket address"),
            ui: DEFAULT_UI.parse().expect("a socket address"),
            max_body: DEFAULT_MAX_BODY,
            synchronous: Synchronous::Full,
            tunnel: None,
            tunnel_options: TunnelOptions::default(),
            proxy: None,
            systeme_api: None,
            forward: ForwardPolicy::default(),
            ingest_limits: ListenerLimits::default(),
            ui_limits: ListenerLimits::ui_default(),
            sync: None,
            follow: None,
            sync_timing: SyncTiming::default(),
            alert_webhook: None,
            alert_retry: AlertRetry::default(),
            alert_check_every: DEFAULT_ALERT_CHECK_EVERY,
            probe_timing: ProbeTiming::default(),
        }
    }
}

/// A running Hookscope. Drop it or call [`Running::stop`] to shut down.
pub struct Running {
    pub ingest_addr: SocketAddr,
    pub ui_addr: SocketAddr,
    /// Where a tunnel or proxy of your own connects, when one was asked for.
    pub proxy_addr: Option<SocketAddr>,
    /// `http://127.0.0.1:PORT/h/TOKEN` of the default endpoint.
    pub webhook_url: String,
    /// `http://127.0.0.1:PORT/?token=APITOKEN`.
    pub ui_url: String,
    /// `http://127.0.0.1:PORT` of the sync listener, and the token it asks for.
    pub sync_url: Option<String>,
    pub sync_token: Option<String>,
    pub state: Arc<AppState>,
    /// The data folder, where this run announced itself ([`announce`]).
    data_dir: PathBuf,
    servers: Vec<JoinHandle<()>>,
    /// The indexer's thread, joined once the writer has stopped.
    indexer: Option<std::thread::JoinHandle<()>>,
    /// [`Running::stop`] ran: nothing is left for dropping to do.
    stopped: bool,
}

impl Running {
    /// The lines `hookscope serve` and the desktop app print at start, for the user and
    /// for scripts: `Webhook URL: …`, `UI: …`, then `Proxy listener: …`, `Sync URL: …`
    /// and `Sync token: …` when asked for.
    pub fn write_addresses(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        writeln!(out, "Webhook URL: {}", self.webhook_url)?;
        writeln!(out, "UI: {}", self.ui_url)?;
        if let Some(proxy) = self.proxy_addr {
            writeln!(
                out,
                "Proxy listener: http://{proxy} (for your own tunnel or reverse proxy)"
            )?;
        }
        if let (Some(url), Some(token)) = (&self.sync_url, &self.sync_token) {
            writeln!(out, "Sync URL: {url}")?;
            writeln!(out, "Sync token: {token}")?;
        }
        out.flush()
    }

    /// Prints `Public URL: <public base>/h/TOKEN` each time the tunnel comes up with a
    /// new address, for the user to paste into systeme.io.
    /// Runs until shutdown: spawn it.
    pub fn public_url_printer(&self) -> impl Future<Output = ()> + Send + 'static {
        let state = self.state.clone();
        let mut status = state.public.tunnels.subscribe();
        async move {
            let mut shown: Option<String> = None;
            loop {
                let url = {
                    let status = status.borrow_and_update();
                    (status.state == TunnelState::Up)
                        .then(|| status.public_url.clone())
                        .flatten()
                };
                if let Some(url) = url.filter(|u| shown.as_ref() != Some(u)) {
                    if let Ok(endpoint) = state.store.default_endpoint() {
                        println!("Public URL: {url}/h/{}", endpoint.token);
                        if url.starts_with("http://") {
                            println!(
                                "  (plain HTTP: systeme.io's Settings webhooks need an https:// URL)"
                            );
                        }
                    }
                    shown = Some(url);
                }
                if status.changed().await.is_err() {
                    return;
                }
            }
        }
    }

    /// Resolves when the store's writer has failed too often to go on (see
    /// [`Writer::watch_failed`]): nothing is stored any more, and the process should stop
    /// and exit non-zero for its supervisor to start it again.
    pub fn failed(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut failed = self.state.store.writer.watch_failed();
        async move {
            let _ = failed.wait_for(|failed| *failed).await;
        }
    }

    /// Stops accepting, lets in-flight deliveries commit and answer, stops the writer.
    pub async fn stop(mut self) {
        self.state.public.tunnels.stop().await;
        self.state.shutdown.cancel();
        let drained = std::mem::take(&mut self.servers)
            .into_iter()
            .map(|server| async move {
                if tokio::time::timeout(DRAIN_TIMEOUT, server).await.is_err() {
                    tracing::warn!("connections still open after {DRAIN_TIMEOUT:?}; closing them");
                }
            });
        futures_util::future::join_all(drained).await;
        let state = self.state.clone();
        let indexer = self.indexer.take();
        let _ = tokio::task::spawn_blocking(move || {
            state.store.writer.stop();
            if let Some(indexer) = indexer {
                let _ = indexer.join();
            }
        })
        .await;
        // Released now, not when the last task holding the state lets go of it: the same
        // folder may be opened again at once.
        announce::withdraw(&self.data_dir);
        drop(self.state.data_dir_lock.lock().map(|mut held| held.take()));
        self.stopped = true;
    }
}

impl Drop for Running {
    /// Dropped without [`Running::stop`] (a caller that returned early, a test that
    /// failed half-way): it still stops. Listeners and background tasks end, the tunnel
    /// stops, the writer commits what it holds, and the data folder is free again; only
    /// the wait for connections to drain is skipped.
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        self.state.shutdown.cancel();
        let state = self.state.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let tunnels = state.clone();
            runtime.spawn(async move { tunnels.public.tunnels.stop().await });
        }
        // Off the runtime: the writer's stop blocks until its thread has committed.
        let indexer = self.indexer.take();
        let stopped = std::thread::spawn(move || {
            state.store.writer.stop();
            if let Some(indexer) = indexer {
                let _ = indexer.join();
            }
        });
        let _ = stopped.join();
        announce::withdraw(&self.data_dir);
        drop(self.state.data_dir_lock.lock().map(|mut held| held.take()));
    }
}
