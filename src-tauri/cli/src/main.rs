//! `hookscope`: the headless door into Hookscope's core.

mod send;

/// glibc's allocator spends a tenth of ingest CPU consolidating chunks freed across
/// threads (request bodies are allocated on I/O threads and freed on the writer).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use hookscope_core::app::{self, DEFAULT_MAX_BODY, ServeOptions};
use hookscope_core::exchange::export::{self, Format};
use hookscope_core::http::ingest::IngestLimits;
use hookscope_core::store::db::{self, Synchronous};
use hookscope_core::store::endpoints;
use hookscope_core::store::events::query::EventFilter;
use hookscope_core::tunnel::{TunnelChoice, TunnelOptions};

#[derive(Parser)]
#[command(
    name = "hookscope",
    version,
    about = "See what your systeme.io webhooks really send"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the listener and the UI without a window; prints the webhook URL and the UI URL.
    Serve(ServeArgs),
    /// Post fixture deliveries (exact bytes and headers) to a webhook URL.
    Send(send::SendArgs),
    /// Write captured events as JSON or NDJSON, straight from the data directory.
    Export(ExportArgs),
    /// Load an export back; events already present are skipped.
    Import(ImportArgs),
    /// List endpoints, or set an endpoint's systeme.io secret (a running Hookscope picks it
    /// up within seconds; past deliveries are re-checked).
    Endpoints(EndpointsArgs),
    /// Your systeme.io account: store its API key, list its Settings webhooks, point one at
    /// this machine's public URL (created with a fresh secret when there is none).
    Systeme(SystemeArgs),
    /// Send stored events again (to the endpoint's forward target or --to URL), as they
    /// arrived, edited (--body) or re-signed with the endpoint's secret (--resign).
    Replay(ReplayArgs),
}

#[derive(Args)]
struct ReplayArgs {
    #[command(flatten)]
    data_dir: DataDirArg,
    /// Event ids, sent in the order given
    #[arg(required_unless_present = "email", conflicts_with = "email")]
    ids: Vec<String>,
    /// A contact's whole timeline, oldest first
    #[arg(long)]
    email: Option<String>,
    /// Where to send [default: the endpoint's forward target]
    #[arg(long, value_name = "URL")]
    to: Option<String>,
    /// Sign again with the endpoint's secret (fresh X-Webhook-Signature and attempt id)
    #[arg(long)]
    resign: bool,
    /// Send this file's bytes instead of the stored body (one event only)
    #[arg(long, value_name = "FILE")]
    body: Option<PathBuf>,
}

#[derive(Args)]
struct SystemeArgs {
    #[command(flatten)]
    data_dir: DataDirArg,
    /// systeme.io's API base URL (a stand-in for rehearsals and tests)
    #[arg(long, env = "HOOKSCOPE_SYSTEME_API", value_name = "URL", hide = true)]
    systeme_api: Option<String>,
    #[command(subcommand)]
    action: SystemeAction,
}

#[derive(Subcommand)]
enum SystemeAction {
    /// Store the API key from systeme.io → Settings → Public API keys (read from standard
    /// input when not given), or --clear it.
    Key {
        key: Option<String>,
        #[arg(long, conflicts_with = "key")]
        clear: bool,
    },
    /// List the account's Settings webhooks and which endpoint each points at.
    Webhooks,
    /// Point the endpoint's Settings webhook at the public URL: updates the one that points
    /// at an earlier address, or creates one (its secret stored on the endpoint).
    Register {
        /// The endpoint's name or id [default: the default endpoint]
        #[arg(long)]
        endpoint: Option<String>,
        /// The public base URL [default: the last one a tunnel gave]
        #[arg(long, value_name = "https://...")]
        url: Option<String>,
        /// Events to subscribe a new webhook to [default: all]
        #[arg(long, value_delimiter = ',', value_name = "EVENT,...")]
        events: Option<Vec<String>>,
    },
}

#[derive(Args)]
struct EndpointsArgs {
    #[command(flatten)]
    data_dir: DataDirArg,
    #[command(subcommand)]
    action: Option<EndpointAction>,
}

#[derive(Subcommand)]
enum EndpointAction {
    /// Set the secret key systeme.io signs Settings webhooks with (read from standard input
    /// when not given, so it stays out of your shell history), or --clear it.
    Secret {
        /// The endpoint's name or id
        endpoint: String,
        secret: Option<String>,
        #[arg(long, conflicts_with = "secret")]
        clear: bool,
    },
    /// Pass every delivery of the endpoint on to your own handler (after storing it), or
    /// --clear to stop.
    Forward {
        /// The endpoint's name or id
        endpoint: String,
        /// e.g. http://localhost:3000/webhooks/systeme
        #[arg(required_unless_present = "clear")]
        url: Option<String>,
        #[arg(long, conflicts_with = "url")]
        clear: bool,
    },
    /// Answer the endpoint's deliveries with a chosen status, headers, body and delay (to
    /// rehearse a failing or slow handler), or --clear for a fast 200 again.
    Respond {
        /// The endpoint's name or id
        endpoint: String,
        #[arg(long, required_unless_present = "clear")]
        status: Option<u16>,
        #[arg(long, default_value = "")]
        body: String,
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
        /// `Name: value` (repeatable)
        #[arg(short = 'H', long = "header", value_name = "HEADER")]
        headers: Vec<String>,
        #[arg(long, conflicts_with = "status")]
        clear: bool,
    },
}

#[derive(Args)]
struct DataDirArg {
    /// Where captures are kept [default: the platform data directory]
    #[arg(long, env = "HOOKSCOPE_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

impl DataDirArg {
    fn resolve(&self) -> Result<PathBuf> {
        if let Some(dir) = &self.data_dir {
            return Ok(dir.clone());
        }
        Ok(app::default_data_dir()?)
    }
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    data_dir: DataDirArg,
    /// Address of the webhook listener (what a tunnel points at); port 0 picks a free one
    #[arg(
        long,
        env = "HOOKSCOPE_INGEST",
        default_value = app::DEFAULT_INGEST,
        value_name = "ADDR"
    )]
    ingest: SocketAddr,
    /// Address of the UI and API (loopback only); port 0 picks a free one
    #[arg(
        long,
        env = "HOOKSCOPE_UI",
        default_value = app::DEFAULT_UI,
        value_name = "ADDR"
    )]
    ui: SocketAddr,
    /// Largest delivery body accepted, in bytes; larger ones get 413
    #[arg(long, env = "HOOKSCOPE_MAX_BODY", default_value_t = DEFAULT_MAX_BODY, value_name = "BYTES")]
    max_body: usize,
    /// SQLite durability: full (survives power loss) or normal (survives crashes)
    #[arg(
        long,
        env = "HOOKSCOPE_SYNCHRONOUS",
        default_value = "full",
        value_name = "MODE"
    )]
    synchronous: Synchronous,
    /// Public URL through a tunnel: cloudflared, bore, bore:HOST, manual:URL or off.
    /// Remembered for the next start; the default is the last choice (first run:
    /// cloudflared when it is installed)
    #[arg(long, env = "HOOKSCOPE_TUNNEL", value_name = "TUNNEL")]
    tunnel: Option<TunnelChoice>,
    /// A loopback address for a tunnel or reverse proxy you run yourself: the sender it
    /// appends to X-Forwarded-For is recorded and checked against systeme.io's addresses
    #[arg(long, env = "HOOKSCOPE_PROXY", value_name = "ADDR")]
    proxy: Option<SocketAddr>,
    /// The cloudflared program, when it is not on PATH
    #[arg(long, env = "HOOKSCOPE_CLOUDFLARED", value_name = "PATH")]
    cloudflared: Option<PathBuf>,
    /// Your ngrok authtoken (else the one saved from the UI)
    #[arg(
        long,
        env = "NGROK_AUTHTOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    ngrok_authtoken: Option<String>,
    /// ngrok's service address, for self-hosted setups
    #[arg(
        long,
        env = "HOOKSCOPE_NGROK_SERVER",
        value_name = "HOST:PORT",
        hide = true
    )]
    ngrok_server: Option<String>,
    /// systeme.io's API base URL (a stand-in for rehearsals and tests).
    #[arg(long, env = "HOOKSCOPE_SYSTEME_API", value_name = "URL", hide = true)]
    systeme_api: Option<String>,
}

#[derive(Args)]
struct ExportArgs {
    #[command(flatten)]
    data_dir: DataDirArg,
    /// Only this contact (any case)
    #[arg(long)]
    email: Option<String>,
    /// Only this event type, e.g. customer.sale.completed or SALE_NEW
    #[arg(long = "type", value_name = "TYPE")]
    event_type: Option<String>,
    /// Only this signature verdict: valid, invalid, unsigned or no_secret
    #[arg(long, value_name = "VERDICT")]
    signature: Option<String>,
    /// Only events whose payload contains these words
    #[arg(long = "q", value_name = "WORDS")]
    query: Option<String>,
    /// Only this endpoint id
    #[arg(long)]
    endpoint: Option<String>,
    /// Only events received at or after this RFC 3339 time
    #[arg(long)]
    since: Option<String>,
    /// Only events received before this RFC 3339 time
    #[arg(long)]
    until: Option<String>,
    /// json (one array) or ndjson (one event per line)
    #[arg(long, default_value = "json")]
    format: String,
    /// Write here instead of standard output
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Args)]
struct ImportArgs {
    #[command(flatten)]
    data_dir: DataDirArg,
    /// Largest body an imported event may carry, in bytes (the store's delivery limit)
    #[arg(long, env = "HOOKSCOPE_MAX_BODY", default_value_t = DEFAULT_MAX_BODY, value_name = "BYTES")]
    max_body: usize,
    /// An export (JSON or NDJSON); - reads standard input
    file: PathBuf,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HOOKSCOPE_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Send(args) => send::run(args),
        Command::Export(args) => export_command(args),
        Command::Import(args) => import_command(args),
        Command::Endpoints(args) => endpoints_command(args),
        Command::Systeme(args) => systeme_command(args),
        Command::Replay(args) => replay_command(args),
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hookscope: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn serve(args: ServeArgs) -> Result<()> {
    let options = ServeOptions {
        data_dir: args.data_dir.resolve()?,
        ingest: args.ingest,
        ui: args.ui,
        max_body: args.max_body,
        synchronous: args.synchronous,
        tunnel: args.tunnel,
        tunnel_options: TunnelOptions {
            cloudflared: args.cloudflared,
            ngrok_authtoken: args.ngrok_authtoken,
            ngrok_server: args.ngrok_server,
        },
        proxy: args.proxy,
        systeme_api: args.systeme_api,
        forward: Default::default(),
        ingest_limits: Default::default(),
        ui_limits: IngestLimits::ui_default(),
    };
    runtime()?.block_on(async {
        let stop_requested = stop_signals()?;
        let running = app::start(options.clone()).await?;
        for notice in &running.state.notices {
            eprintln!("{notice}");
        }
        running.write_addresses(&mut std::io::stdout().lock())?;
        tokio::spawn(running.public_url_printer());
        tracing::info!(data_dir = %options.data_dir.display(), "listening");
        stop_requested.await;
        tracing::info!("stopping: finishing in-flight deliveries");
        running.stop().await;
        tracing::info!("stopped");
        Ok(())
    })
}

/// Ctrl-C or SIGTERM. Listened for from before the URLs are printed: a signal sent as soon
/// as they appear must stop the server cleanly, not kill it.
#[cfg(unix)]
fn stop_signals() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

#[cfg(not(unix))]
fn stop_signals() -> std::io::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

fn existing_database(data_dir: &Path) -> Result<PathBuf> {
    let path = db::database_path(data_dir);
    if !path.exists() {
        bail!(
            "no Hookscope data in {}: pass the --data-dir that `hookscope serve` used",
            data_dir.display()
        );
    }
    Ok(path)
}

fn export_command(args: ExportArgs) -> Result<()> {
    let format: Format = args.format.parse()?;
    let database = existing_database(&args.data_dir.resolve()?)?;
    let filter = EventFilter {
        email: args.email,
        event_type: args.event_type,
        signature: args.signature,
        q: args.query,
        endpoint: args.endpoint,
        since: args.since,
        until: args.until,
        ..EventFilter::default()
    };
    let count = match &args.output {
        Some(path) => export::export_to_file(&database, &filter, format, path, DEFAULT_MAX_BODY)?,
        None => export::export(
            &db::open_reader(&database)?,
            &filter,
            format,
            &mut BufWriter::new(std::io::stdout().lock()),
            DEFAULT_MAX_BODY,
        )?,
    };
    eprintln!("Exported {count} events.");
    Ok(())
}

fn import_command(args: ImportArgs) -> Result<()> {
    let data_dir = args.data_dir.resolve()?;
    if let Some(notice) = db::ensure_data_dir(&data_dir)? {
        eprintln!("{notice}");
    }
    let mut conn = db::open_writer(&db::database_path(&data_dir), Synchronous::Full)?;
    let report = if args.file.as_os_str() == "-" {
        hookscope_core::exchange::import::import(&mut conn, std::io::stdin().lock(), args.max_body)?
    } else {
        let file = File::open(&args.file)
            .with_context(|| format!("cannot open {}", args.file.display()))?;
        hookscope_core::exchange::import::import(&mut conn, file, args.max_body)?
    };
    for refusal in &report.refusals {
        eprintln!("{refusal}");
    }
    let unnamed = report.refused - report.refusals.len() as u64;
    if unnamed > 0 {
        eprintln!("... and {unnamed} more not imported.");
    }
    eprintln!(
        "Imported {} events ({} already present).",
        report.imported, report.already_present
    );
    if report.refused > 0 {
        bail!("{} event(s) were not imported", report.refused);
    }
    Ok(())
}

fn replay_command(args: ReplayArgs) -> Result<()> {
    use hookscope_core::delivery::replay::{self, ReplayRequest};
    let data_dir = args.data_dir.resolve()?;
    let path = existing_database(&data_dir)?;
    let conn = db::open_writer(&path, Synchronous::Full)?;
    let ids = match &args.email {
        Some(email) => replay::contact_timeline(&conn, email)?,
        None => args.ids.clone(),
    };
    let body = match &args.body {
        Some(_) if ids.len() != 1 => bail!("--body edits one event: give a single id"),
        Some(file) => Some(
            std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?,
        ),
        None => None,
    };
    let request = ReplayRequest {
        url: args.to.clone(),
        resign: args.resign,
        body,
    };
    let runtime = runtime()?;
    let mut unanswered = 0;
    let mut out = std::io::stdout().lock();
    for id in ids {
        let plan = replay::plan(&conn, &id, &request)?;
        let result = runtime.block_on(replay::send(&plan));
        replay::record(&conn, &plan, &result)?;
        match (&result.status, &result.error) {
            (Some(status), _) => writeln!(
                out,
                "{id}\t{status}\t{} ms\t{}",
                result.duration_ms, result.target
            )?,
            (None, error) => {
                unanswered += 1;
                writeln!(
                    out,
                    "{id}\tno answer\t{}\t{}",
                    error.as_deref().unwrap_or("?"),
                    result.target
                )?
            }
        }
    }
    if unanswered > 0 {
        bail!("{unanswered} replay(s) got no answer");
    }
    Ok(())
}

/// The endpoint's secret, written straight into the data directory's database.
struct CliSecret<'c> {
    conn: std::cell::RefCell<&'c mut db::Connection>,
    endpoint: String,
}

impl hookscope_core::systeme::SecretStore for CliSecret<'_> {
    async fn store(&self, secret: Option<String>) -> hookscope_core::Result<()> {
        let mut conn = self.conn.borrow_mut();
        endpoints::set_secret(&mut conn, &self.endpoint, secret.as_deref()).map(|_| ())
    }
}

fn systeme_command(args: SystemeArgs) -> Result<()> {
    use hookscope_core::systeme::{self, API_KEY_SETTING};
    let data_dir = args.data_dir.resolve()?;
    let path = existing_database(&data_dir)?;
    let mut conn = db::open_writer(&path, Synchronous::Full)?;
    let key = || -> Result<String> {
        db::get_setting(&conn, API_KEY_SETTING)?
            .context("no systeme.io API key yet: `hookscope systeme key` stores one")
    };
    match args.action {
        SystemeAction::Key { key, clear } => {
            let key = match (clear, key) {
                (true, _) => None,
                (false, Some(key)) => Some(key),
                (false, None) => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    Some(line)
                }
            };
            match key.map(|k| k.trim().to_string()) {
                Some(key) if key.is_empty() => bail!("the API key is empty"),
                Some(key) => {
                    db::put_setting(&conn, API_KEY_SETTING, &key)?;
                    eprintln!("systeme.io API key stored in {}.", path.display());
                }
                None => {
                    db::delete_setting(&conn, API_KEY_SETTING)?;
                    eprintln!("systeme.io API key forgotten.");
                }
            }
        }
        SystemeAction::Webhooks => {
            let client = systeme::Client::new(args.systeme_api.as_deref(), &key()?)?;
            let endpoints = endpoints::list(&conn)?;
            let webhooks = runtime()?.block_on(client.list())?;
            let mut out = std::io::stdout().lock();
            for w in webhooks {
                let endpoint = endpoints
                    .iter()
                    .find(|e| systeme::points_at(&w.url, &e.token))
                    .map(|e| format!("→ {}", e.name))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{endpoint}",
                    w.id,
                    w.name.unwrap_or_default(),
                    w.url,
                    w.subscriptions.join(",")
                )?;
            }
        }
        SystemeAction::Register {
            endpoint,
            url,
            events,
        } => {
            let list = endpoints::list(&conn)?;
            let target = match &endpoint {
                None => list.iter().find(|e| e.is_default).or(list.first()),
                Some(wanted) => list
                    .iter()
                    .find(|e| &e.id == wanted || e.name.eq_ignore_ascii_case(wanted)),
            }
            .context("no such endpoint: `hookscope endpoints` lists them")?
            .clone();
            let base = match url {
                Some(url) => url,
                None => db::get_setting(&conn, hookscope_core::app::LAST_URL_SETTING)?
                    .context("no public URL known yet: pass --url https://... or start a tunnel with `hookscope serve --tunnel cloudflared`")?,
            };
            let key = key()?;
            let store = CliSecret {
                conn: std::cell::RefCell::new(&mut conn),
                endpoint: target.id.clone(),
            };
            let registration = runtime()?.block_on(systeme::register_endpoint(
                args.systeme_api.as_deref(),
                &key,
                &target,
                &base,
                events,
                &store,
            ))?;
            let what = match registration.action {
                "created" => "created",
                "updated" => "updated",
                _ => "already up to date",
            };
            println!("{}\t{what}", registration.webhook.url);
            if let Some(previous) = registration.previous_url {
                eprintln!("It pointed at {previous} before.");
            }
            if registration.new_secret.is_some() {
                eprintln!(
                    "Its secret is stored on {}: signatures are checked from now on.",
                    target.name
                );
            }
        }
    }
    Ok(())
}

fn endpoints_command(args: EndpointsArgs) -> Result<()> {
    let data_dir = args.data_dir.resolve()?;
    let path = existing_database(&data_dir)?;
    let mut conn = db::open_writer(&path, Synchronous::Full)?;
    let list = endpoints::list(&conn)?;
    let Some(action) = args.action else {
        let mut out = std::io::stdout().lock();
        for e in &list {
            let default = if e.is_default { " (default)" } else { "" };
            let secret = if e.has_secret {
                "secret set"
            } else {
                "no secret"
            };
            let forward = e
                .forward_to
                .as_deref()
                .map(|to| format!("\tforwards to {to}"))
                .unwrap_or_default();
            writeln!(
                out,
                "{}\t{}{default}\t/h/{}\t{secret}{forward}",
                e.id, e.name, e.token
            )?;
        }
        return Ok(());
    };
    let named = match &action {
        EndpointAction::Secret { endpoint, .. }
        | EndpointAction::Forward { endpoint, .. }
        | EndpointAction::Respond { endpoint, .. } => endpoint.clone(),
    };
    let matching: Vec<_> = list
        .iter()
        .filter(|e| e.id == named || e.name.eq_ignore_ascii_case(&named))
        .collect();
    let target = match matching.as_slice() {
        [one] => one.id.clone(),
        [] => bail!("no endpoint named {named:?}: `hookscope endpoints` lists them"),
        _ => bail!("several endpoints are named {named:?}: give its id"),
    };
    // A running Hookscope takes these up within a quarter of a second.
    match action {
        EndpointAction::Secret { secret, clear, .. } => {
            let secret = match (clear, secret) {
                (true, _) => None,
                (false, Some(secret)) => Some(secret),
                (false, None) => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    Some(line)
                }
            };
            let changed = endpoints::set_secret(&mut conn, &target, secret.as_deref())?;
            eprintln!(
                "{}: {}. Past deliveries were re-checked.",
                changed.name,
                if changed.has_secret {
                    "secret set"
                } else {
                    "secret cleared"
                }
            );
        }
        EndpointAction::Forward { url, clear, .. } => {
            let url = if clear { None } else { url };
            let changed = endpoints::set_forward_to(&conn, &target, url.as_deref())?;
            match &changed.forward_to {
                Some(to) => eprintln!("{}: every delivery is forwarded to {to}.", changed.name),
                None => eprintln!("{}: not forwarded any more.", changed.name),
            }
        }
        EndpointAction::Respond {
            status,
            body,
            delay_ms,
            headers,
            clear,
            ..
        } => {
            let response = match (clear, status) {
                (false, Some(status)) => Some(endpoints::CannedResponse {
                    status,
                    headers: headers
                        .iter()
                        .map(|h| {
                            h.split_once(':')
                                .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
                                .with_context(|| format!("-H {h:?}: expected `Name: value`"))
                        })
                        .collect::<Result<_>>()?,
                    body,
                    delay_ms,
                }),
                _ => None,
            };
            let changed = endpoints::set_response(&conn, &target, response.as_ref())?;
            match &changed.response {
                Some(r) => eprintln!(
                    "{}: deliveries are answered {} after {} ms (and stored all the same).",
                    changed.name, r.status, r.delay_ms
                ),
                None => eprintln!("{}: deliveries get a fast 200 again.", changed.name),
            }
        }
    }
    Ok(())
}
