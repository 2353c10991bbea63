//! `start`: a running Hookscope from its options, one named step at a time.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Running, ServeOptions, announce, tasks};
use crate::capture::token_guard::TokenGuard;
use crate::delivery::follow::{self, FollowControl, FollowTarget};
use crate::delivery::forward;
use crate::error::{Error, Result};
use crate::http::ingest::{self, Listener};
use crate::http::listener::ListenerLimits;
use crate::http::memory_budget::MemoryBudget;
use crate::http::state::{Access, AppState};
use crate::http::sync::{self, SyncState};
use crate::http::{api, listener};
use crate::service::STREAM_BUFFER;
use crate::service::alert_webhook;
use crate::service::alerts::{self, Alerts};
use crate::service::erasure::{Erasure, Retention};
use crate::service::following::Following;
use crate::service::forwarding::Forwarding;
use crate::service::health::Health;
use crate::service::probe::{self, Probe};
use crate::service::public::PublicUrls;
use crate::service::store::Store;
use crate::service::systeme::SystemeLink;
use crate::store::db::{self, SetAside};
use crate::store::endpoints::{self, Directory, Endpoint};
use crate::store::index_worker::{self, IndexerHandle};
use crate::store::settings::{self, Setting};
use crate::store::writer::Writer;
use crate::tokens;
use crate::tunnel::Tunnels;

const READ_CONNECTIONS: u32 = 8;

pub async fn start(options: ServeOptions) -> Result<Running> {
    refuse_exposed_addresses(&options)?;
    let opened = open_store(&options).await?;
    let bound = bind_listeners(&options).await?;
    let state = services(&options, opened.install, &bound)?;
    // Checked before anything is served: a start refused leaves nothing running.
    let alert_webhook = match &options.alert_webhook {
        Some(url) => Some(alert_webhook::checked_url(url, &state.public)?),
        None => None,
    };
    let default = opened.default_endpoint;
    let mut servers = serve_webhooks_and_ui(
        &options,
        &state,
        [
            Some((bound.ingest, Listener::Direct)),
            Some((bound.tunnel, Listener::Tunnel)),
            bound.proxy.map(|proxy| (proxy, Listener::Proxy)),
        ],
        bound.ui,
    );
    let sync_addr = match bound.sync {
        Some((listener, addr)) => {
            let token = opened.sync_token.clone().expect("a relay has a sync token");
            servers.push(serve_sync(&options, &state, listener, token));
            Some(addr)
        }
        None => None,
    };
    start_background_work(&options, &state, opened.follow, alert_webhook).await?;
    let indexer = index_worker::start(IndexerHandle {
        database: state.store.database.clone(),
        writer: state.store.writer.clone(),
        inflate_limit: state.store.max_body.bytes(),
        shutdown: state.shutdown.clone(),
        runtime: tokio::runtime::Handle::current(),
    });
    // Last: from here `hookscope` commands send their changes to this process.
    announce::announce(&options.data_dir, bound.ui_addr)?;
    Ok(Running {
        ingest_addr: bound.ingest_addr,
        ui_addr: bound.ui_addr,
        proxy_addr: bound.proxy_addr,
        webhook_url: state.public.webhook_url(&default),
        ui_url: format!("http://{}/?token={}", bound.ui_addr, state.access.api_token),
        sync_url: sync_addr.map(|addr| format!("http://{}", reachable(addr))),
        sync_token: opened.sync_token,
        state,
        data_dir: options.data_dir.clone(),
        servers,
        indexer: Some(indexer),
        stopped: false,
    })
}

/// The UI/API, the proxy and the sync listener serve this machine only.
fn refuse_exposed_addresses(options: &ServeOptions) -> Result<()> {
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
    Ok(())
}

/// The store as opened: its connections, the install's tokens, its endpoints, and what
/// the user must be told about the folder.
struct Opened {
    install: Install,
    default_endpoint: Endpoint,
    sync_token: Option<String>,
    follow: Option<FollowTarget>,
}

/// What the services are built from.
struct Install {
    lock: std::fs::File,
    database: std::path::PathBuf,
    writer: rusqlite::Connection,
    checkpoints: rusqlite::Connection,
    api_token: String,
    install_id: String,
    endpoints: Vec<Endpoint>,
    notices: Vec<String>,
}

/// Takes the data folder, opens the store (setting aside a file it cannot open),
/// and reads or makes the install's tokens; remembers a relay given to follow.
async fn open_store(options: &ServeOptions) -> Result<Opened> {
    let folder_notice = db::ensure_data_dir(&options.data_dir)?;
    let lock = lock_data_dir(&options.data_dir)?;
    // An earlier run that was killed may have left its address: not ours yet.
    announce::withdraw(&options.data_dir);
    let database = db::database_path(&options.data_dir);
    let path = database.clone();
    let synchronous = options.synchronous;
    let relay = options.sync.is_some();
    let given_target = options.follow.clone();
    let opened = tokio::task::spawn_blocking(move || -> Result<_> {
        let (writer, set_aside) = db::open_writer_setting_aside(&path, synchronous)?;
        endpoints::ensure_default(&writer)?;
        let api_token = settings::setting_or_insert(&writer, Setting::ApiToken, tokens::api_token)?;
        let install_id =
            settings::setting_or_insert(&writer, Setting::InstallId, || tokens::random_hex(8))?;
        let endpoints = endpoints::list(&writer)?;
        let checkpoints = db::open_second_writer(&path, synchronous)?;
        // Made once and kept: a follower's configuration stays valid across restarts.
        let sync_token = relay
            .then(|| settings::setting_or_insert(&writer, Setting::SyncToken, tokens::api_token))
            .transpose()?;
        let follow = remembered_follow(&writer, given_target)?;
        Ok((
            writer,
            checkpoints,
            api_token,
            install_id,
            endpoints,
            set_aside,
            sync_token,
            follow,
        ))
    })
    .await
    .map_err(|_| Error::ShuttingDown)??;
    let (writer, checkpoints, api_token, install_id, endpoints, set_aside, sync_token, follow) =
        opened;
    Ok(Opened {
        default_endpoint: endpoints[0].clone(),
        install: Install {
            lock,
            database,
            writer,
            checkpoints,
            api_token,
            install_id,
            endpoints,
            notices: set_aside
                .iter()
                .map(SetAside::message)
                .chain(folder_notice)
                .collect(),
        },
        sync_token,
        follow,
    })
}

/// Every listener, bound before anything is served, so a taken port fails the start.
struct Bound {
    ingest: TcpListener,
    ui: TcpListener,
    /// Only our tunnel connects here, from this machine; what it reports about the sender
    /// counts.
    tunnel: TcpListener,
    proxy: Option<TcpListener>,
    sync: Option<(TcpListener, SocketAddr)>,
    ingest_addr: SocketAddr,
    ui_addr: SocketAddr,
    tunnel_addr: SocketAddr,
    proxy_addr: Option<SocketAddr>,
}

async fn bind_listeners(options: &ServeOptions) -> Result<Bound> {
    let ingest = bind(options.ingest).await?;
    let ui = bind(options.ui).await?;
    let tunnel = bind(SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0))).await?;
    let proxy = match options.proxy {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let sync = match options.sync {
        Some(addr) => {
            let listener = bind(addr).await?;
            let addr = listener.local_addr()?;
            Some((listener, addr))
        }
        None => None,
    };
    Ok(Bound {
        ingest_addr: reachable(ingest.local_addr()?),
        ui_addr: reachable(ui.local_addr()?),
        tunnel_addr: tunnel.local_addr()?,
        proxy_addr: match &proxy {
            Some(listener) => Some(listener.local_addr()?),
            None => None,
        },
        ingest,
        ui,
        tunnel,
        proxy,
        sync,
    })
}

/// The services, each with what it needs, and the state the handlers share.
fn services(options: &ServeOptions, install: Install, bound: &Bound) -> Result<Arc<AppState>> {
    let (published, _) = broadcast::channel(STREAM_BUFFER);
    let directory = Arc::new(Directory::default());
    directory.replace(install.endpoints);
    let store = Arc::new(Store {
        writer: Arc::new(Writer::start(
            install.writer,
            install.checkpoints,
            published.clone(),
        )?),
        reads: db::read_pool(&install.database, READ_CONNECTIONS)?,
        database: install.database,
        directory,
        published,
        max_body: options.max_body,
    });
    let shutdown = CancellationToken::new();
    // The API token's forms, made once for the whole install: ingest, the follower and
    // imports keep it out of what they store.
    let token_guard = Arc::new(TokenGuard::new(&install.api_token));
    let public = Arc::new(PublicUrls::new(
        store.clone(),
        Tunnels::new(bound.tunnel_addr, options.tunnel_options.clone()),
        format!("http://{}", bound.ingest_addr),
        bound.proxy_addr.map(|addr| format!("http://{addr}")),
        [
            Some(bound.ingest_addr),
            Some(bound.tunnel_addr),
            bound.proxy_addr,
        ]
        .into_iter()
        .flatten()
        .collect(),
    ));
    let systeme = Arc::new(SystemeLink::new(
        store.clone(),
        public.clone(),
        options.systeme_api.clone(),
    ));
    let probe = Arc::new(Probe::new(public.clone(), options.probe_timing));
    let alerts = Arc::new(Alerts::load(store.clone(), options.alert_check_every)?);
    Ok(Arc::new(AppState {
        erasure: Arc::new(Erasure::new(store.clone())),
        retention: Arc::new(Retention::new(store.clone())),
        health: Arc::new(Health::new(
            store.clone(),
            public.clone(),
            systeme.clone(),
            probe.clone(),
            alerts.clone(),
        )),
        systeme,
        probe,
        alerts,
        follow: Arc::new(Following::new(
            store.clone(),
            Arc::new(FollowControl::with_timing(options.sync_timing)),
            token_guard.clone(),
            install.install_id.clone(),
            shutdown.clone(),
        )),
        forwarding: Arc::new(Forwarding::new(
            store.clone(),
            options.forward.clone(),
            install.install_id,
            shutdown.clone(),
        )),
        access: Access {
            cookie_name: format!("hookscope_token_{}", bound.ui_addr.port()),
            ui_hosts: ui_hosts(bound.ui_addr),
            token_guard,
            api_token: install.api_token,
        },
        ingest_limits: options.ingest_limits.clone(),
        memory: MemoryBudget::new(
            options.ingest_limits.body_budget,
            options.ingest_limits.decodes_at_once,
        ),
        notices: install.notices,
        data_dir_lock: std::sync::Mutex::new(Some(install.lock)),
        public,
        store,
        shutdown,
    }))
}

/// The webhook listeners (direct, tunnel, proxy) and the UI/API, each within its limits.
fn serve_webhooks_and_ui(
    options: &ServeOptions,
    state: &Arc<AppState>,
    webhooks: [Option<(TcpListener, Listener)>; 3],
    ui: TcpListener,
) -> Vec<JoinHandle<()>> {
    // The UI port is loopback only, but any local program can reach it: the same guards.
    let ui_slots = listener::connection_slots(&options.ui_limits, 0);
    // One pool of connections for the ingest listeners (public, tunnel, proxy), within the
    // files the UI leaves.
    let ingest_slots =
        listener::connection_slots(&options.ingest_limits, ui_slots.available_permits());
    let mut servers: Vec<JoinHandle<()>> = webhooks
        .into_iter()
        .flatten()
        .map(|(listener, kind)| {
            let accepting = state.clone();
            tokio::spawn(listener::serve(
                listener,
                ingest::router(state.clone(), kind),
                options.ingest_limits.clone(),
                ingest_slots.clone(),
                state.shutdown.clone(),
                move || kind.reported(&accepting),
            ))
        })
        .collect();
    servers.push(tokio::spawn(listener::serve(
        ui,
        api::router(state.clone()),
        options.ui_limits.clone(),
        ui_slots,
        state.shutdown.clone(),
        || (),
    )));
    servers
}

/// A relay's sync listener: its deliveries for followers who show the sync token.
fn serve_sync(
    options: &ServeOptions,
    state: &Arc<AppState>,
    sync_listener: TcpListener,
    token: String,
) -> JoinHandle<()> {
    let sync_state = Arc::new(SyncState {
        reads: state.store.reads.clone(),
        committed: state.store.writer.watch_committed(),
        token,
        relay_id: state.forwarding.install_id.clone(),
        max_body: state.store.max_body,
        shutdown: state.shutdown.clone(),
        followers: Arc::new(tokio::sync::Semaphore::new(sync::FOLLOWERS)),
        budget: Arc::new(tokio::sync::Semaphore::new(sync::budget_units(
            state.store.max_body,
        ))),
        heartbeat: options.sync_timing.heartbeat,
    });
    let limits = sync_limits();
    let slots = listener::connection_slots(&limits, 0);
    tokio::spawn(listener::serve(
        sync_listener,
        sync::router(sync_state),
        limits,
        slots,
        state.shutdown.clone(),
        || (),
    ))
}

/// The tunnel (the one given, else the remembered one), and the tasks that run beside
/// the listeners: remembering public URLs, pruning, forwarding, following a relay.
async fn start_background_work(
    options: &ServeOptions,
    state: &Arc<AppState>,
    follow_target: Option<FollowTarget>,
    alert_webhook: Option<String>,
) -> Result<()> {
    let choice = match options.tunnel.clone() {
        Some(choice) => choice,
        None => state.public.remembered().await?,
    };
    state.public.choose(choice, None).await?;
    tasks::remember_public_urls(state.clone());
    tasks::prune_by_age(state.clone());
    forward::start(state.forwarding.handle());
    tokio::spawn(alerts::watch(
        state.alerts.clone(),
        state.probe.clone(),
        state.forwarding.results.clone(),
        state.shutdown.clone(),
    ));
    tokio::spawn(probe::run(state.probe.clone(), state.shutdown.clone()));
    if let Some(url) = alert_webhook {
        tokio::spawn(alert_webhook::send_alerts(
            url,
            state.alerts.raised.clone(),
            options.alert_retry,
            state.public.clone(),
            state.shutdown.clone(),
        ));
    }
    state.follow.start_following(follow_target);
    follow::start(state.follow.handle());
    Ok(())
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
            Setting::FollowTarget,
            &serde_json::to_string(&target).expect("a target serialises"),
        )?;
        return Ok(Some(target));
    }
    let remembered: Option<FollowTarget> = settings::get_setting(conn, Setting::FollowTarget)?
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
/// by the system however the process ends). A running Hookscope holds it, and so does a
/// `hookscope` command while it changes the store with none running; a command that finds
/// it held sends its change to the running Hookscope ([`super::announce`]).
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
