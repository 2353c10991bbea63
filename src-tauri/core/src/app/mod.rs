//! Starting and stopping Hookscope: open the store, bind the listeners (ingest for the
//! tunnel, UI/API on loopback), serve until asked to stop, then drain: in-flight
//! deliveries finish, the writer commits what it holds, and only then does it return.

mod config;
mod tasks;

pub use config::{ServeConfig, blank_env_is_unset};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use crate::http::state::AppState;

use crate::delivery::follow::{self, FollowControl, FollowTarget};
use crate::delivery::forward::{self, ForwardPolicy};
use crate::error::{Error, Result};
use crate::exchange::sync_protocol::SyncTiming;
use crate::http::ingest::{self, Listener};
use crate::http::listener::ListenerLimits;
use crate::http::memory_budget::MemoryBudget;
use crate::http::sync::{self, SyncState};
use crate::http::{api, listener};
use crate::store::db::{self, Synchronous};
use crate::store::endpoints::{self, Directory};
use crate::store::index_worker::{self, IndexerHandle};
use crate::store::settings;
use crate::store::writer::Writer;
use crate::tokens;
use crate::tunnel::{TunnelChoice, TunnelOptions, TunnelState, Tunnels};

pub const DEFAULT_MAX_BODY: usize = 10 * 1024 * 1024;
/// Fixed defaults so the webhook URL pasted into systeme.io stays valid across restarts.
pub const DEFAULT_INGEST: &str = "127.0.0.1:4747";
pub const DEFAULT_UI: &str = "127.0.0.1:4748";
/// Live viewers may fall this many events behind before they are told to resync.
const STREAM_BUFFER: usize = 4096;
const READ_CONNECTIONS: u32 = 8;
/// How long a stop waits for open connections before closing them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub data_dir: PathBuf,
    pub ingest: SocketAddr,
    pub ui: SocketAddr,
    pub max_body: usize,
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
        let mut status = state.tunnels.subscribe();
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
                    if let Ok(endpoint) = state.default_endpoint().await {
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
        let mut failed = self.state.writer.watch_failed();
        async move {
            let _ = failed.wait_for(|failed| *failed).await;
        }
    }

    /// Stops accepting, lets in-flight deliveries commit and answer, stops the writer.
    pub async fn stop(mut self) {
        self.state.tunnels.stop().await;
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
            state.writer.stop();
            if let Some(indexer) = indexer {
                let _ = indexer.join();
            }
        })
        .await;
        // Released now, not when the last task holding the state lets go of it: the same
        // folder may be opened again at once.
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
            runtime.spawn(async move { tunnels.tunnels.stop().await });
        }
        // Off the runtime: the writer's stop blocks until its thread has committed.
        let indexer = self.indexer.take();
        let stopped = std::thread::spawn(move || {
            state.writer.stop();
            if let Some(indexer) = indexer {
                let _ = indexer.join();
            }
        });
        let _ = stopped.join();
        drop(self.state.data_dir_lock.lock().map(|mut held| held.take()));
    }
}

/// The address a listener reaches from this machine (`0.0.0.0` → `127.0.0.1`).
fn reachable(addr: SocketAddr) -> SocketAddr {
    let ip = if addr.ip().is_unspecified() {
        match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        }
    } else {
        addr.ip()
    };
    SocketAddr::new(ip, addr.port())
}

async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}

pub async fn start(options: ServeOptions) -> Result<Running> {
    if !options.ui.ip().is_loopback() {
        return Err(Error::Invalid(format!(
            "the UI/API address {} is not a loopback address: it serves captured personal data, so it stays on 127.0.0.1 (or ::1)",
            options.ui
        )));
    }
    if let Some(proxy) = options.proxy.filter(|proxy| !proxy.ip().is_loopback()) {
        return Err(Error::Invalid(format!(
            "the proxy address {proxy} is not a loopback address: the sender a proxy reports is believed there, so only programs on this machine may connect (use 127.0.0.1 or ::1)"
        )));
    }
    if let Some(proxy) = options.proxy.filter(|proxy| proxy.port() != 0)
        && (proxy == options.ingest || proxy == options.ui)
    {
        return Err(Error::Invalid(format!(
            "the proxy address {proxy} is also the webhook or UI address: give the proxy listener a port of its own"
        )));
    }
    if let Some(sync) = options.sync.filter(|sync| !sync.ip().is_loopback()) {
        return Err(Error::Invalid(format!(
            "the sync address {sync} is not a loopback address: followers reach it through your HTTPS reverse proxy or an SSH tunnel (use 127.0.0.1 or ::1)"
        )));
    }
    let folder_notice = db::ensure_data_dir(&options.data_dir)?;
    let lock = lock_data_dir(&options.data_dir)?;
    let path = db::database_path(&options.data_dir);
    let path_for_open = path.clone();
    let synchronous = options.synchronous;
    let relay = options.sync.is_some();
    let given_target = options.follow.clone();
    let (conn, checkpoints, (api_token, install_id), endpoint_list, set_aside, sync_token, follow) =
        tokio::task::spawn_blocking(move || -> Result<_> {
            let (conn, set_aside) = db::open_writer_setting_aside(&path_for_open, synchronous)?;
            endpoints::ensure_default(&conn)?;
            let api_token =
                settings::setting_or_insert(&conn, settings::Setting::ApiToken, tokens::api_token)?;
            let install_id =
                settings::setting_or_insert(&conn, settings::Setting::InstallId, || {
                    tokens::random_hex(8)
                })?;
            let list = endpoints::list(&conn)?;
            let checkpoints = db::open_second_writer(&path_for_open, synchronous)?;
            // Made once and kept: a follower's configuration stays valid across restarts.
            let sync_token = relay
                .then(|| {
                    settings::setting_or_insert(
                        &conn,
                        settings::Setting::SyncToken,
                        tokens::api_token,
                    )
                })
                .transpose()?;
            let follow = remembered_follow(&conn, given_target)?;
            Ok((
                conn,
                checkpoints,
                (api_token, install_id),
                list,
                set_aside,
                sync_token,
                follow,
            ))
        })
        .await
        .map_err(|_| Error::ShuttingDown)??;

    let ingest_listener = bind(options.ingest).await?;
    let ui_listener = bind(options.ui).await?;
    // Only our tunnel connects here, from this machine; what it reports about the sender
    // counts.
    let tunnel_listener = bind(SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0))).await?;
    let tunnel_target = tunnel_listener.local_addr()?;
    let proxy_listener = match options.proxy {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let sync_listener = match options.sync {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let sync_addr = match &sync_listener {
        Some(listener) => Some(listener.local_addr()?),
        None => None,
    };
    let proxy_addr = match &proxy_listener {
        Some(listener) => Some(listener.local_addr()?),
        None => None,
    };
    let ingest_addr = reachable(ingest_listener.local_addr()?);
    let ui_addr = reachable(ui_listener.local_addr()?);

    let (published, _) = broadcast::channel(STREAM_BUFFER);
    let directory = Arc::new(Directory::default());
    let default = endpoint_list[0].clone();
    directory.replace(endpoint_list);
    let ingest_base = format!("http://{ingest_addr}");
    let state = Arc::new(AppState {
        database: path.clone(),
        writer: Arc::new(Writer::start(
            conn,
            checkpoints,
            options.synchronous,
            published.clone(),
        )?),
        reads: db::read_pool(&path, READ_CONNECTIONS)?,
        directory,
        published,
        cookie_name: format!("hookscope_token_{}", ui_addr.port()),
        ui_hosts: ui_hosts(ui_addr),
        api_token,
        ingest_base,
        proxy_base: proxy_addr.map(|addr| format!("http://{addr}")),
        max_body: options.max_body,
        ingest_limits: options.ingest_limits.clone(),
        shutdown: CancellationToken::new(),
        tunnels: Tunnels::new(tunnel_target, options.tunnel_options.clone()),
        systeme_api: options.systeme_api.clone(),
        registering: tokio::sync::Mutex::new(()),
        data_dir_lock: std::sync::Mutex::new(Some(lock)),
        forward_policy: options.forward.clone(),
        notices: set_aside
            .iter()
            .map(db::SetAside::message)
            .chain(folder_notice)
            .collect(),
        forwarded: broadcast::channel(STREAM_BUFFER).0,
        install_id,
        webhook_listeners: [Some(ingest_addr), Some(tunnel_target), proxy_addr]
            .into_iter()
            .flatten()
            .collect(),
        memory: MemoryBudget::new(
            options.ingest_limits.body_budget,
            options.ingest_limits.decodes_at_once,
        ),
        retention_changed: tokio::sync::Notify::new(),
        follow: Arc::new(FollowControl::with_timing(options.sync_timing)),
    });

    // The UI port is loopback only, but any local program can reach it: the same guards.
    let ui_slots = listener::connection_slots(&options.ui_limits, 0);
    // One pool of connections for the ingest listeners (public, tunnel, proxy), within the
    // files the UI leaves.
    let ingest_slots =
        listener::connection_slots(&options.ingest_limits, ui_slots.available_permits());
    let serve_ingest = |listener: TcpListener, kind: Listener| {
        let accepting = state.clone();
        tokio::spawn(listener::serve(
            listener,
            ingest::router(state.clone(), kind),
            options.ingest_limits.clone(),
            ingest_slots.clone(),
            state.shutdown.clone(),
            move || kind.reported(&accepting),
        ))
    };
    let mut servers = vec![
        serve_ingest(ingest_listener, Listener::Direct),
        serve_ingest(tunnel_listener, Listener::Tunnel),
        tokio::spawn(listener::serve(
            ui_listener,
            api::router(state.clone()),
            options.ui_limits.clone(),
            ui_slots,
            state.shutdown.clone(),
            || (),
        )),
    ];
    if let Some(proxy_listener) = proxy_listener {
        servers.push(serve_ingest(proxy_listener, Listener::Proxy));
    }
    if let (Some(sync_listener), Some(token)) = (sync_listener, sync_token.clone()) {
        let sync_state = Arc::new(SyncState {
            reads: state.reads.clone(),
            committed: state.writer.watch_committed(),
            token,
            relay_id: state.install_id.clone(),
            max_body: state.max_body,
            shutdown: state.shutdown.clone(),
            followers: Arc::new(tokio::sync::Semaphore::new(sync::FOLLOWERS)),
            budget: Arc::new(tokio::sync::Semaphore::new(sync::budget_units(
                state.max_body,
            ))),
            heartbeat: options.sync_timing.heartbeat,
        });
        let limits = sync_limits();
        let slots = listener::connection_slots(&limits, 0);
        servers.push(tokio::spawn(listener::serve(
            sync_listener,
            sync::router(sync_state),
            limits,
            slots,
            state.shutdown.clone(),
            || (),
        )));
    }
    let choice = match options.tunnel.clone() {
        Some(choice) => choice,
        None => tasks::remembered_tunnel(&state).await?,
    };
    state.choose_tunnel(choice, None).await?;
    tasks::remember_public_urls(state.clone());
    tasks::follow_endpoint_changes(state.clone());
    tasks::prune_by_age(state.clone());
    forward::start(state.forward_handle());
    state.follow.set(follow);
    follow::start(state.follow_handle());
    let indexer = index_worker::start(IndexerHandle {
        database: state.database.clone(),
        writer: state.writer.clone(),
        inflate_limit: state.max_body,
        shutdown: state.shutdown.clone(),
        runtime: tokio::runtime::Handle::current(),
    });
    Ok(Running {
        ingest_addr,
        ui_addr,
        proxy_addr,
        webhook_url: state.webhook_url(&default),
        ui_url: format!("http://{ui_addr}/?token={}", state.api_token),
        sync_url: sync_addr.map(|addr| format!("http://{}", reachable(addr))),
        sync_token,
        state,
        servers,
        indexer: Some(indexer),
        stopped: false,
    })
}

/// The sync listener's limits: the UI port's, with room for many connections that have
/// not shown the token yet (they get 401 and are closed at once, or wait at most ten
/// seconds for their request's head); followers themselves are [`sync::FOLLOWERS`] at most,
/// and one that stops reading is let go after fifteen seconds.
/// It takes no bodies, so the body limits never apply.
fn sync_limits() -> ListenerLimits {
    ListenerLimits {
        max_connections: 8 * sync::FOLLOWERS,
        header_read: Duration::from_secs(10),
        // A reader that takes nothing for this long gives its share of the budget back.
        write_stall: Duration::from_secs(15),
        ..ListenerLimits::ui_default()
    }
}

/// The relay to follow: the one given (then remembered), else the remembered one.
fn remembered_follow(
    conn: &rusqlite::Connection,
    given: Option<FollowTarget>,
) -> Result<Option<FollowTarget>> {
    if let Some(target) = given {
        settings::put_setting(
            conn,
            settings::Setting::FollowTarget,
            &serde_json::to_string(&target).expect("a target serialises"),
        )?;
        return Ok(Some(target));
    }
    let remembered: Option<FollowTarget> =
        settings::get_setting(conn, settings::Setting::FollowTarget)?
            .and_then(|text| serde_json::from_str(&text).ok());
    // Checked again: one remembered by a Hookscope that took what this one refuses (a
    // user name and password in the URL) is not followed.
    Ok(remembered.and_then(
        |target| match FollowTarget::new(&target.url, &target.token) {
            Ok(checked) => Some(checked),
            Err(error) => {
                tracing::warn!(%error, "the remembered relay is not followed");
                None
            }
        },
    ))
}

/// Takes the data folder for this process (an advisory lock on `hookscope.lock`, released
/// by the system however the process ends). The command-line tools that read or change
/// the store while a server runs do not take it.
pub fn lock_data_dir(data_dir: &Path) -> Result<std::fs::File> {
    let path = data_dir.join("hookscope.lock");
    let mut options = std::fs::OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(&path).map_err(|source| Error::DataDir {
        path: path.clone(),
        source,
    })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::AlreadyRunning {
            path: data_dir.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(Error::DataDir { path, source }),
    }
}

fn ui_hosts(ui: SocketAddr) -> Vec<String> {
    let port = ui.port();
    let mut hosts = vec![ui.to_string(), format!("localhost:{port}")];
    if port == 80 {
        hosts.extend([ui.ip().to_string(), "localhost".to_string()]);
    }
    hosts
}
