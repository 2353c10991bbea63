//! `hookscope replay`: stored events sent again.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use hookscope_core::store::db::{self, Synchronous};

use reqwest::Method;

use crate::changes::{Changer, RunningHookscope, changer};
use crate::{DataDirArg, MaxBodyArg, existing_database, indexed_so_far, runtime};

#[derive(Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub data_dir: DataDirArg,
    /// Event ids, sent in the order given
    #[arg(required_unless_present = "email", conflicts_with = "email")]
    pub ids: Vec<String>,
    /// A contact's whole timeline, oldest first
    #[arg(long)]
    pub email: Option<String>,
    /// Where to send [default: the endpoint's forward target]
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
    /// Sign again with the endpoint's secret (fresh X-Webhook-Signature and attempt id)
    #[arg(long)]
    pub resign: bool,
    #[command(flatten)]
    pub max_body: MaxBodyArg,
    /// Send this file's bytes instead of the stored body (one event only)
    #[arg(long, value_name = "FILE")]
    pub body: Option<PathBuf>,
}

enum Replayer {
    Here(std::fs::File, db::Connection),
    Running(RunningHookscope),
}

pub fn run(args: ReplayArgs) -> Result<()> {
    use hookscope_core::delivery::replay::{self, ReplayRequest};
    let data_dir = args.data_dir.resolve()?;
    let path = existing_database(&data_dir)?;
    let ids = match &args.email {
        Some(email) => {
            // Found by contact: what was stored a moment ago counts too.
            indexed_so_far(&data_dir, args.max_body.max_body)?;
            replay::contact_timeline(&db::open_reader(&path)?, email)?
        }
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
    // Each replay is recorded in the event's history: by this command, or by the running
    // Hookscope, which then sends it.
    let mut replayer = match changer(&data_dir)? {
        Changer::Here(lock) => Replayer::Here(lock, db::open_writer(&path, Synchronous::Full)?),
        Changer::Running(hookscope) => Replayer::Running(hookscope),
    };
    let runtime = runtime()?;
    let mut unanswered = 0;
    let mut out = std::io::stdout().lock();
    for id in ids {
        let result = match &mut replayer {
            Replayer::Running(hookscope) => hookscope.send(
                Method::POST,
                &["api", "events", &id, "replay"],
                &serde_json::json!({
                    "url": request.url,
                    "resign": request.resign,
                    "body": request.body,
                }),
            )?,
            Replayer::Here(_lock, conn) => {
                let plan = replay::plan(conn, &id, &request)?;
                let result = runtime.block_on(replay::send(&plan));
                replay::record(conn, &plan, &result)?;
                result
            }
        };
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
