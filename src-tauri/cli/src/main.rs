//! `hookscope`: the headless door into Hookscope's core. A module per command.

mod changes;
mod diff;
mod docs;
mod endpoint;
mod endpoints;
mod erasure;
mod files;
mod replay;
mod send;
mod serve;
mod systeme;

/// glibc's allocator spends a tenth of ingest CPU consolidating chunks freed across
/// threads (request bodies are allocated on I/O threads and freed on the writer).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use hookscope_core::app;
use hookscope_core::store::db;

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
    Serve(serve::ServeArgs),
    /// Post fixture deliveries (exact bytes and headers) to a webhook URL.
    Send(send::SendArgs),
    /// Write captured events as JSON or NDJSON, straight from the data directory.
    Export(files::ExportArgs),
    /// Compare two stored events: headers, and the body by JSON path, by line or by hash
    /// (`-` only in A, `+` only in B, `~` changed); --json prints what the API answers.
    Diff(diff::DiffArgs),
    /// Load an export back; events already present are skipped (through the running
    /// Hookscope, when one runs on the folder).
    Import(files::ImportArgs),
    /// Derive everything again (contacts, cards, search, shapes, retries, repeats) from
    /// the stored deliveries. Stop Hookscope on the folder first.
    Reindex(files::ReindexArgs),
    /// Erase everything stored about a person (their deliveries and any that mention
    /// their email), on their request; --export first writes it all to a file.
    Forget(erasure::ForgetArgs),
    /// Show or set how long deliveries are kept (off by default).
    Retention(erasure::RetentionArgs),
    /// List endpoints, or set an endpoint's systeme.io secret, forward target or answer (a
    /// running Hookscope makes the change, at once; past deliveries are re-checked).
    Endpoints(endpoints::EndpointsArgs),
    /// Your systeme.io account: store its API key, list its Settings webhooks, point one at
    /// this machine's public URL (created with a fresh secret when there is none).
    Systeme(systeme::SystemeArgs),
    /// Send stored events again (to the endpoint's forward target or --to URL), as they
    /// arrived, edited (--body) or re-signed with the endpoint's secret (--resign).
    Replay(replay::ReplayArgs),
    /// Print the shell completion script for bash, zsh, fish, elvish or powershell.
    Completions(docs::CompletionsArgs),
    /// Write the man pages into a folder (for packagers).
    #[command(hide = true)]
    ManPages(docs::ManPagesArgs),
}

#[derive(Args)]
pub struct DataDirArg {
    /// Where captures are kept [default: the platform data directory]
    #[arg(long, env = "HOOKSCOPE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// For commands that decode stored bodies (to find a contact, a mention, an export's
/// text): the body limit the store was given.
#[derive(Args, Clone, Copy)]
pub struct MaxBodyArg {
    /// Largest body decoded, in bytes: the limit `hookscope serve` runs with
    #[arg(long, env = "HOOKSCOPE_MAX_BODY", default_value_t = app::DEFAULT_MAX_BODY, value_name = "BYTES")]
    pub max_body: app::BodyLimit,
}

impl DataDirArg {
    pub fn resolve(&self) -> Result<PathBuf> {
        if let Some(dir) = &self.data_dir {
            return Ok(dir.clone());
        }
        Ok(app::default_data_dir()?)
    }
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
    let cli = match app::blank_env_is_unset(Cli::command())
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches))
    {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    let outcome = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Send(args) => send::run(args),
        Command::Export(args) => files::export(args),
        Command::Diff(args) => diff::run(args),
        Command::Import(args) => files::import(args),
        Command::Reindex(args) => files::reindex(args),
        Command::Forget(args) => erasure::forget(args),
        Command::Retention(args) => erasure::retention(args),
        Command::Endpoints(args) => endpoints::run(args),
        Command::Systeme(args) => systeme::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Completions(args) => docs::completions(args),
        Command::ManPages(args) => docs::man_pages(args),
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hookscope: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Before a command reads by contact: every delivery stored so far is indexed. With no
/// Hookscope on the folder this command indexes them (holding the folder meanwhile); else
/// it waits (ten seconds at most) for the running one's indexer, reading only.
pub fn indexed_so_far(data_dir: &Path, max_body: app::BodyLimit) -> Result<()> {
    use hookscope_core::store::{deliveries, indexer};
    let database = existing_database(data_dir)?;
    match app::lock_data_dir(data_dir) {
        Ok(_held) => {
            let mut conn = db::open_writer(&database, db::Synchronous::Full)?;
            indexer::run_to_end(&mut conn, max_body.bytes(), |_, _| {})?;
        }
        Err(hookscope_core::Error::AlreadyRunning { .. }) => {
            let conn = db::open_reader(&database)?;
            let stored = deliveries::last_seq(&conn)?;
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while indexer::position(&conn)? < stored {
                if std::time::Instant::now() >= deadline {
                    eprintln!(
                        "Hookscope is still indexing deliveries: the newest may be missing here."
                    );
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
        Err(error) => return Err(error.into()),
    }
    Ok(())
}

pub fn existing_database(data_dir: &Path) -> Result<PathBuf> {
    let path = db::database_path(data_dir);
    if !path.exists() {
        bail!(
            "no Hookscope data in {}: pass the --data-dir that `hookscope serve` used",
            data_dir.display()
        );
    }
    Ok(path)
}
