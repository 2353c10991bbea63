//! `hookscope export` and `hookscope import`: captures to and from files. Export reads the
//! data folder directly (also while Hookscope runs); import goes through the running
//! Hookscope when there is one.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use hookscope_core::app::{BodyLimit, DEFAULT_MAX_BODY};
use hookscope_core::exchange::export::{self, Format};
use hookscope_core::exchange::import;
use hookscope_core::store::db::{self, Synchronous};
use hookscope_core::store::events::query::EventFilter;
use hookscope_core::store::indexer;
use reqwest::Method;
use tokio_util::io::ReaderStream;

use crate::changes::{Changer, changer};
use crate::{DataDirArg, MaxBodyArg, existing_database, indexed_so_far};

#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub data_dir: DataDirArg,
    /// Only this contact (any case)
    #[arg(long)]
    pub email: Option<String>,
    /// Only this event type, e.g. customer.sale.completed or SALE_NEW
    #[arg(long = "type", value_name = "TYPE")]
    pub event_type: Option<String>,
    /// Only this signature verdict: valid, invalid, unsigned or no_secret
    #[arg(long, value_name = "VERDICT")]
    pub signature: Option<String>,
    /// Only events whose payload contains these words
    #[arg(long = "q", value_name = "WORDS")]
    pub query: Option<String>,
    /// Only this endpoint id
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Only events received at or after this RFC 3339 time
    #[arg(long)]
    pub since: Option<String>,
    /// Only events received before this RFC 3339 time
    #[arg(long)]
    pub until: Option<String>,
    /// json (one array) or ndjson (one event per line)
    #[arg(long, default_value = "json")]
    pub format: String,
    /// Write here instead of standard output
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub max_body: MaxBodyArg,
}

#[derive(Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub data_dir: DataDirArg,
    /// Largest body an imported event may carry, in bytes (the store's delivery limit; a
    /// running Hookscope keeps to its own)
    #[arg(long, env = "HOOKSCOPE_MAX_BODY", default_value_t = DEFAULT_MAX_BODY, value_name = "BYTES")]
    pub max_body: BodyLimit,
    /// An export (JSON or NDJSON); - reads standard input
    pub file: PathBuf,
}

pub fn export(args: ExportArgs) -> Result<()> {
    let format: Format = args.format.parse()?;
    let data_dir = args.data_dir.resolve()?;
    let database = existing_database(&data_dir)?;
    // Everything stored so far is in the export: derived here, or by the running
    // Hookscope (waited for).
    let max_body = args.max_body.max_body;
    indexed_so_far(&data_dir, max_body)?;
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
        Some(path) => export::export_to_file(&database, &filter, format, path, max_body.bytes())?,
        None => export::export(
            &db::open_reader(&database)?,
            &filter,
            format,
            &mut BufWriter::new(std::io::stdout().lock()),
            max_body.bytes(),
        )?,
    };
    eprintln!("Exported {count} events.");
    Ok(())
}

pub fn import(args: ImportArgs) -> Result<()> {
    let data_dir = args.data_dir.resolve()?;
    if let Some(notice) = db::ensure_data_dir(&data_dir)? {
        eprintln!("{notice}");
    }
    let report = match changer(&data_dir)? {
        Changer::Here(_lock) => {
            let mut conn = db::open_writer(&db::database_path(&data_dir), Synchronous::Full)?;
            let report = if args.file.as_os_str() == "-" {
                import::import(&mut conn, std::io::stdin().lock(), args.max_body.bytes())?
            } else {
                import::import(&mut conn, open_input(&args.file)?, args.max_body.bytes())?
            };
            said_imported(&report);
            // Derived here: no Hookscope runs on the folder to do it.
            indexer::run_to_end(&mut conn, args.max_body.bytes(), |_, _| {})?;
            report
        }
        Changer::Running(hookscope) => {
            // Sent as it is read; the running Hookscope stores it through its writer (and
            // to its own body limit) and indexes it as it comes.
            let body = if args.file.as_os_str() == "-" {
                reqwest::Body::wrap_stream(ReaderStream::new(tokio::io::stdin()))
            } else {
                let file = open_input(&args.file)?;
                reqwest::Body::wrap_stream(ReaderStream::new(tokio::fs::File::from_std(file)))
            };
            let request = hookscope
                .request(Method::POST, hookscope.url(&["api", "import"]))
                .body(body);
            let report = hookscope.call(request)?;
            said_imported(&report);
            report
        }
    };
    if report.refused > 0 {
        bail!("{} event(s) were not imported", report.refused);
    }
    Ok(())
}

fn open_input(file: &std::path::Path) -> Result<File> {
    File::open(file).with_context(|| format!("cannot open {}", file.display()))
}

fn said_imported(report: &import::ImportReport) {
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
}

#[derive(Args)]
pub struct ReindexArgs {
    #[command(flatten)]
    pub data_dir: DataDirArg,
    /// Largest body inflated while decoding, in bytes (the store's delivery limit)
    #[arg(long, env = "HOOKSCOPE_MAX_BODY", default_value_t = DEFAULT_MAX_BODY, value_name = "BYTES")]
    pub max_body: BodyLimit,
}

/// `hookscope reindex`: every derived table emptied and derived again from the stored
/// deliveries. Hookscope must not run on the folder meanwhile.
pub fn reindex(args: ReindexArgs) -> Result<()> {
    let data_dir = args.data_dir.resolve()?;
    let path = existing_database(&data_dir)?;
    let _held = match hookscope_core::app::lock_data_dir(&data_dir) {
        Err(hookscope_core::Error::AlreadyRunning { .. }) => bail!(
            "Hookscope is running on {}: stop it first (its indexer keeps the derived state current by itself)",
            data_dir.display()
        ),
        other => other?,
    };
    let mut conn = db::open_writer(&path, Synchronous::Full)?;
    indexer::reset(&mut conn)?;
    let started = std::time::Instant::now();
    let mut last_said = std::time::Instant::now();
    let done = indexer::run_to_end(&mut conn, args.max_body.bytes(), |done, left| {
        if last_said.elapsed() >= std::time::Duration::from_secs(1) {
            eprintln!("Indexed {done} deliveries, {left} to go.");
            last_said = std::time::Instant::now();
        }
    })?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "Reindexed {done} deliveries in {seconds:.1} s ({:.0} a second).",
        done as f64 / seconds.max(1e-9)
    );
    Ok(())
}
