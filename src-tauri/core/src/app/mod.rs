//! Starting and stopping Hookscope: open the store, bind the two listeners (ingest for the
//! tunnel, UI/API on loopback), serve until asked to stop, then drain: in-flight
//! deliveries finish, the writer commits what it holds, and only then does it return.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::delivery::forward::{self, ForwardPolicy, ForwardUpdate};
use crate::error::{Error, Result};
use crate::exchange::event_json::EventMeta;
use crate::http::api;
use crate::http::ingest;
use crate::http::ingest::{IngestLimits, Listener};
use crate::http::listener;
use crate::http::memory_budget::MemoryBudget;
use crate::store::backfill;
use crate::store::db::{self, ReadPool, Synchronous};
use crate::store::endpoints::{self, Directory, Endpoint};
use crate::store::writer::Writer;
use crate::systeme;
use crate::tokens;
use crate::tunnel::{self, TunnelChoice, TunnelOptions, TunnelState, Tunnels};

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
    pub ingest_limits: IngestLimits,
    /// Timeouts and connection limits of the UI port (its body limits are not used).
    pub ui_limits: IngestLimits,
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
    /// The settings `hookscope serve` takes from its environment, for a start without
    /// flags (the desktop app): `HOOKSCOPE_DATA_DIR`, `HOOKSCOPE_INGEST`, `HOOKSCOPE_UI`,
    /// `HOOKSCOPE_MAX_BODY`, `HOOKSCOPE_SYNCHRONOUS`, `HOOKSCOPE_TUNNEL`,
    /// `HOOKSCOPE_CLOUDFLARED` (the cloudflared program), `NGROK_AUTHTOKEN`,
    /// `HOOKSCOPE_NGROK_SERVER`, `HOOKSCOPE_PROXY`.
    pub fn from_env() -> Result<ServeOptions> {
        fn var(name: &str) -> Option<String> {
            std::env::var(name).ok().filter(|v| !v.trim().is_empty())
        }
        fn parsed<T: std::str::FromStr>(name: &str, default: &str) -> Result<T> {
            let text = var(name).unwrap_or_else(|| default.to_string());
            text.trim()
                .parse()
                .map_err(|_| Error::Invalid(format!("{name}={text:?} is not valid")))
        }
        Ok(ServeOptions {
            data_dir: match var("HOOKSCOPE_DATA_DIR") {
                Some(dir) => PathBuf::from(dir),
                None => default_data_dir()?,
            },
            ingest: parsed("HOOKSCOPE_INGEST", DEFAULT_INGEST)?,
            ui: parsed("HOOKSCOPE_UI", DEFAULT_UI)?,
            max_body: parsed("HOOKSCOPE_MAX_BODY", &DEFAULT_MAX_BODY.to_string())?,
            synchronous: parsed("HOOKSCOPE_SYNCHRONOUS", "full")?,
            tunnel: match var("HOOKSCOPE_TUNNEL") {
                Some(text) => Some(
                    text.parse()
                        .map_err(|e| Error::Invalid(format!("HOOKSCOPE_TUNNEL: {e}")))?,
                ),
                None => None,
            },
            tunnel_options: TunnelOptions {
                cloudflared: var("HOOKSCOPE_CLOUDFLARED").map(PathBuf::from),
                ngrok_authtoken: var("NGROK_AUTHTOKEN"),
                ngrok_server: var("HOOKSCOPE_NGROK_SERVER"),
            },
            proxy: match var("HOOKSCOPE_PROXY") {
                Some(_) => Some(parsed("HOOKSCOPE_PROXY", "")?),
                None => None,
            },
            systeme_api: var("HOOKSCOPE_SYSTEME_API"),
            forward: ForwardPolicy::default(),
            ingest_limits: IngestLimits::default(),
            ui_limits: IngestLimits::ui_default(),
        })
    }
}

/// An endpoint's secret, changed through the writer (so the ingest directory follows).
struct EndpointSecret<'s> {
    state: &'s AppState,
    endpoint: String,
}

impl systeme::SecretStore for EndpointSecret<'_> {
    async fn store(&self, secret: Option<String>) -> Result<()> {
        let id = self.endpoint.clone();
        self.state
            .change_endpoints(move |conn| endpoints::set_secret(conn, &id, secret.as_deref()))
            .await
            .map(|_| ())
    }
}

/// What the handlers share.
pub struct AppState {
    /// The SQLite file, for exports written straight to disk.
    pub database: PathBuf,
    pub writer: Writer,
    pub reads: ReadPool,
    pub directory: Directory,
    pub published: broadcast::Sender<Arc<EventMeta>>,
    pub api_token: String,
    /// Per port, so two installs on one machine don't overwrite each other's cookie.
    pub cookie_name: String,
    /// `Host` values the UI/API answers to.
    pub ui_hosts: Vec<String>,
    /// `http://127.0.0.1:PORT`: where webhook URLs point.
    pub ingest_base: String,
    /// `http://127.0.0.1:PORT` where a tunnel or proxy of your own connects, if asked for.
    pub proxy_base: Option<String>,
    pub max_body: usize,
    pub ingest_limits: IngestLimits,
    pub shutdown: CancellationToken,
    pub tunnels: Tunnels,
    pub systeme_api: Option<String>,
    /// Held while a systeme.io registration runs.
    pub registering: tokio::sync::Mutex<()>,
    /// Held while this server runs: one Hookscope per data folder.
    data_dir_lock: std::sync::Mutex<Option<std::fs::File>>,
    pub forward_policy: ForwardPolicy,
    /// What the user must know about this start (a database moved aside).
    pub notices: Vec<String>,
    /// Forward results as they come, for the live stream.
    pub forwarded: broadcast::Sender<Arc<ForwardUpdate>>,
    /// This install's id, sent with its forwards and replays (see [`forward::LOOP_HEADER`]).
    pub install_id: String,
    /// The listeners deliveries arrive on (webhook, tunnel, proxy): never a forward target.
    pub webhook_listeners: Vec<SocketAddr>,
    /// What deliveries may hold in memory at once.
    pub memory: MemoryBudget,
}

impl AppState {
    /// Runs a read on a pooled read-only connection, off the async threads.
    pub async fn read<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let pool = self.reads.clone();
        tokio::task::spawn_blocking(move || work(&*pool.get()?))
            .await
            .map_err(|_| Error::ShuttingDown)?
    }

    /// Changes endpoints through the writer, then refreshes the ingest directory.
    pub async fn change_endpoints<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let outcome = self
            .writer
            .run(move |conn| {
                let value = work(conn);
                // Even a change that failed halfway may have changed something.
                Ok((value, endpoints::list(conn)?))
            })
            .await?;
        let (value, list) = outcome;
        self.directory.replace(list);
        value
    }

    pub async fn default_endpoint(&self) -> Result<Endpoint> {
        self.read(|conn| {
            endpoints::list(conn)?
                .into_iter()
                .next()
                .ok_or_else(|| Error::NotFound("no endpoint".into()))
        })
        .await
    }

    /// Refuses a forward or replay target that is one of this Hookscope's own webhook
    /// addresses: every delivery forwarded there would come back to be forwarded again.
    /// (One that reaches it another way is caught by [`forward::LOOP_HEADER`].)
    pub fn refuse_own_url(&self, field: &str, target: &str) -> Result<()> {
        let Ok(url) = url::Url::parse(target.trim()) else {
            return Ok(()); // the target's own check says what is wrong with it
        };
        let port = url.port_or_known_default();
        let local_host = match url.host() {
            Some(url::Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                name == "localhost" || name.ends_with(".localhost")
            }
            Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_unspecified(),
            Some(url::Host::Ipv6(ip)) => {
                ip.is_loopback()
                    || ip.is_unspecified()
                    || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
            None => false,
        };
        let on_listener = self.webhook_listeners.iter().any(|listener| {
            Some(listener.port()) == port
                && (local_host
                    || url.host_str().is_some_and(|host| {
                        host.trim_matches(['[', ']']) == listener.ip().to_string()
                    }))
        });
        let status = self.tunnels.status();
        let public_host = status
            .public_url
            .as_deref()
            .and_then(|public| url::Url::parse(public).ok())
            .and_then(|public| public.host_str().map(str::to_ascii_lowercase));
        let through_tunnel =
            public_host.is_some() && url.host_str().map(str::to_ascii_lowercase) == public_host;
        if on_listener || through_tunnel {
            return Err(Error::Invalid(format!(
                "{field}: {target:?} is this Hookscope's own webhook address: every delivery sent there would come back and be sent again. Give your own handler's URL (e.g. http://localhost:3000/webhooks/systeme)"
            )));
        }
        Ok(())
    }

    pub fn webhook_url(&self, endpoint: &Endpoint) -> String {
        format!("{}/h/{}", self.ingest_base, endpoint.token)
    }

    /// The endpoint's URL through the tunnel, while it is up.
    pub fn public_webhook_url(&self, endpoint: &Endpoint) -> Option<String> {
        let status = self.tunnels.status();
        let base = status
            .public_url
            .filter(|_| status.state == TunnelState::Up);
        base.map(|base| format!("{base}/h/{}", endpoint.token))
    }

    /// Points this endpoint's systeme.io Settings webhook at its current public URL
    /// (created with a fresh secret, stored on the endpoint, when there is none).
    pub async fn register_with_systeme(
        &self,
        endpoint_id: String,
        events: Option<Vec<String>>,
    ) -> Result<systeme::Registration> {
        // One registration at a time: a double click must not create two webhooks.
        let _one_at_a_time = self.registering.lock().await;
        let (key, endpoint) = self
            .read(move |conn| {
                Ok((
                    db::get_setting(conn, systeme::API_KEY_SETTING)?,
                    endpoints::get(conn, &endpoint_id)?,
                ))
            })
            .await?;
        let key = key.ok_or_else(|| {
            Error::Invalid(
                "set your systeme.io API key first (systeme.io → Settings → Public API keys)"
                    .into(),
            )
        })?;
        let status = self.tunnels.status();
        let base = status
            .public_url
            .filter(|_| status.state == TunnelState::Up)
            .ok_or_else(|| {
                Error::Invalid(
                    "no public URL yet: start a tunnel (cloudflared or ngrok) first".into(),
                )
            })?;
        let store = EndpointSecret {
            state: self,
            endpoint: endpoint.id.clone(),
        };
        systeme::register_endpoint(
            self.systeme_api.as_deref(),
            &key,
            &endpoint,
            &base,
            events,
            &store,
        )
        .await
    }

    /// Remembers `choice` and switches the running tunnel to it. A given ngrok
    /// authtoken is stored first (an empty one is forgotten).
    pub async fn choose_tunnel(
        &self,
        choice: TunnelChoice,
        ngrok_authtoken: Option<String>,
    ) -> Result<()> {
        let remembered = choice.to_string();
        let (last_url, stored_token) = self
            .writer
            .run(move |conn| {
                match ngrok_authtoken.as_deref().map(str::trim) {
                    Some("") => db::delete_setting(conn, NGROK_TOKEN_SETTING)?,
                    Some(token) => db::put_setting(conn, NGROK_TOKEN_SETTING, token)?,
                    None => {}
                }
                db::put_setting(conn, TUNNEL_SETTING, &remembered)?;
                Ok((
                    db::get_setting(conn, LAST_URL_SETTING)?,
                    db::get_setting(conn, NGROK_TOKEN_SETTING)?,
                ))
            })
            .await?;
        self.tunnels.set_stored_ngrok_authtoken(stored_token);
        self.tunnels.switch(choice, last_url).await;
        Ok(())
    }
}

const TUNNEL_SETTING: &str = "tunnel";
/// Kept in the local database only: never exported, never shown by the API.
const NGROK_TOKEN_SETTING: &str = "ngrok.authtoken";
/// The last public URL the user was shown, to announce a different one after a restart.
pub const LAST_URL_SETTING: &str = "tunnel.last_url";

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
    pub state: Arc<AppState>,
    servers: Vec<JoinHandle<()>>,
}

impl Running {
    /// The lines `hookscope serve` and the desktop app print at start, for the user and
    /// for scripts: `Webhook URL: …`, `UI: …`, then `Proxy listener: …` when asked for.
    pub fn write_addresses(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        writeln!(out, "Webhook URL: {}", self.webhook_url)?;
        writeln!(out, "UI: {}", self.ui_url)?;
        if let Some(proxy) = self.proxy_addr {
            writeln!(
                out,
                "Proxy listener: http://{proxy} (for your own tunnel or reverse proxy)"
            )?;
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

    /// Stops accepting, lets in-flight deliveries commit and answer, stops the writer.
    pub async fn stop(self) {
        self.state.tunnels.stop().await;
        self.state.shutdown.cancel();
        let drained = self.servers.into_iter().map(|server| async move {
            if tokio::time::timeout(DRAIN_TIMEOUT, server).await.is_err() {
                tracing::warn!("connections still open after {DRAIN_TIMEOUT:?}; closing them");
            }
        });
        futures_util::future::join_all(drained).await;
        let state = self.state.clone();
        let _ = tokio::task::spawn_blocking(move || state.writer.stop()).await;
        // Released now, not when the last task holding the state lets go of it: the same
        // folder may be opened again at once.
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
    let folder_notice = db::ensure_data_dir(&options.data_dir)?;
    let lock = lock_data_dir(&options.data_dir)?;
    let path = db::database_path(&options.data_dir);
    let path_for_open = path.clone();
    let synchronous = options.synchronous;
    let (conn, checkpoints, (api_token, install_id), endpoint_list, set_aside) =
        tokio::task::spawn_blocking(move || -> Result<_> {
            let (conn, set_aside) = db::open_writer_setting_aside(&path_for_open, synchronous)?;
            endpoints::ensure_default(&conn)?;
            let api_token = db::setting_or_insert(&conn, "api_token", tokens::api_token)?;
            let install_id =
                db::setting_or_insert(&conn, db::INSTALL_ID_SETTING, || tokens::random_hex(8))?;
            let list = endpoints::list(&conn)?;
            let checkpoints = db::open_second_writer(&path_for_open, synchronous)?;
            Ok((conn, checkpoints, (api_token, install_id), list, set_aside))
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
    let proxy_addr = match &proxy_listener {
        Some(listener) => Some(listener.local_addr()?),
        None => None,
    };
    let ingest_addr = reachable(ingest_listener.local_addr()?);
    let ui_addr = reachable(ui_listener.local_addr()?);

    let (published, _) = broadcast::channel(STREAM_BUFFER);
    let directory = Directory::default();
    let default = endpoint_list[0].clone();
    directory.replace(endpoint_list);
    let ingest_base = format!("http://{ingest_addr}");
    let state = Arc::new(AppState {
        database: path.clone(),
        writer: Writer::start(conn, checkpoints, published.clone())?,
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
    });

    // Until events from before shapes existed are learned from, shapes are incomplete.
    let history = state
        .read(|conn| db::get_setting(conn, backfill::BACKFILL_SETTING))
        .await?;
    let learning = history.is_some();
    state
        .writer
        .run(move |_| {
            crate::store::shapes::set_learning_history(learning);
            Ok(())
        })
        .await?;

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
    let choice = match options.tunnel.clone() {
        Some(choice) => choice,
        None => remembered_tunnel(&state).await?,
    };
    state.choose_tunnel(choice, None).await?;
    remember_public_urls(state.clone());
    follow_endpoint_changes(state.clone());
    backfill_in_background(state.clone());
    forward::start(state.clone());
    Ok(Running {
        ingest_addr,
        ui_addr,
        proxy_addr,
        webhook_url: state.webhook_url(&default),
        ui_url: format!("http://{ui_addr}/?token={}", state.api_token),
        state,
        servers,
    })
}

/// The tunnel chosen last time; on a first run cloudflared when it is installed (a quick
/// tunnel needs no account), else none.
async fn remembered_tunnel(state: &AppState) -> Result<TunnelChoice> {
    let stored = state
        .read(|conn| db::get_setting(conn, TUNNEL_SETTING))
        .await?;
    if let Some(choice) = stored.and_then(|text| text.parse().ok()) {
        return Ok(choice);
    }
    Ok(if tunnel::cloudflared_available(&state.tunnels.options()) {
        TunnelChoice::Cloudflared
    } else {
        TunnelChoice::Off
    })
}

/// Endpoint changes made outside this process (`hookscope endpoints secret`) reach the
/// ingest directory within this long. Reading the few endpoint rows costs microseconds.
const ENDPOINTS_REFRESH: Duration = Duration::from_millis(250);

fn follow_endpoint_changes(state: Arc<AppState>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(ENDPOINTS_REFRESH);
        // Said once per spell of failures, not four times a second.
        let mut failing = false;
        loop {
            tokio::select! {
                _ = state.shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let version = state.directory.version();
            match state.read(endpoints::list).await {
                Ok(list) => {
                    state.directory.refresh(list, version);
                    if std::mem::take(&mut failing) {
                        tracing::info!("endpoints are read again");
                    }
                }
                Err(error) if !failing => {
                    tracing::warn!(%error, "cannot re-read endpoints; retrying quietly");
                    failing = true;
                }
                Err(_) => {}
            }
        }
    });
}

/// Takes the data folder for this process (an advisory lock on `hookscope.lock`, released
/// by the system however the process ends). The command-line tools that read or change
/// the store while a server runs do not take it.
fn lock_data_dir(data_dir: &Path) -> Result<std::fs::File> {
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

/// Derives facts and shapes for events stored by an earlier version (see [`backfill`]).
fn backfill_in_background(state: Arc<AppState>) {
    let inflate_limit = state.max_body;
    tokio::spawn(async move {
        loop {
            let step = move |conn: &mut rusqlite::Connection| {
                let left = backfill::step(conn, inflate_limit)?;
                if left == 0 {
                    crate::store::shapes::set_learning_history(false);
                }
                Ok(left)
            };
            match state.writer.run(step).await {
                Ok(0) => return,
                Ok(left) => tracing::info!(left, "deriving facts of earlier events"),
                Err(error) => {
                    tracing::warn!(%error, "deriving facts of earlier events stopped");
                    return;
                }
            }
        }
    });
}

/// Keeps the last public URL shown, so a new one after a restart is announced as a change.
fn remember_public_urls(state: Arc<AppState>) {
    let mut status = state.tunnels.subscribe();
    tokio::spawn(async move {
        let mut stored: Option<String> = None;
        while status.changed().await.is_ok() {
            let url = status.borrow_and_update().public_url.clone();
            if let Some(url) = url.filter(|u| stored.as_ref() != Some(u)) {
                let value = url.clone();
                let saved = state
                    .writer
                    .run(move |conn| db::put_setting(conn, LAST_URL_SETTING, &value))
                    .await;
                if saved.is_err() {
                    return; // shutting down
                }
                stored = Some(url);
            }
        }
    });
}

fn ui_hosts(ui: SocketAddr) -> Vec<String> {
    let port = ui.port();
    let mut hosts = vec![ui.to_string(), format!("localhost:{port}")];
    if port == 80 {
        hosts.extend([ui.ip().to_string(), "localhost".to_string()]);
    }
    hosts
}
