//! `hookscope forget` and `hookscope retention`: a person's data erased on request, and
//! how long deliveries are kept.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::Args;
use hookscope_core::capture::mentions::Address;
use hookscope_core::exchange::export::{self, Format};
use hookscope_core::store::db::{self, Synchronous};
use hookscope_core::store::erasure::ErasureReport;
use hookscope_core::store::events::query::EventFilter;
use hookscope_core::store::{erasure, indexer, retention};
use hookscope_core::timefmt::now_micros;
use reqwest::Method;

use crate::changes::{Changer, RunningHookscope, changer};
use crate::{DataDirArg, MaxBodyArg, existing_database};

#[derive(Args)]
pub struct ForgetArgs {
    #[command(flatten)]
    pub data_dir: DataDirArg,
    #[command(flatten)]
    pub max_body: MaxBodyArg,
    /// The person's whole email address, in any case (a fragment is refused)
    pub email: String,
    /// First write everything stored about them here (what a right-of-access request asks
    /// for), as JSON
    #[arg(long, value_name = "FILE")]
    pub export: Option<PathBuf>,
    /// Erase without asking
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// Every delivery about the person or mentioning their email goes, with all that was
/// derived from it, and the file is scrubbed. Beside a running Hookscope, it does it.
pub fn forget(args: ForgetArgs) -> Result<()> {
    // One whole address or nothing: a blank or a fragment would match everything.
    let address = Address::parse(&args.email).map_err(anyhow::Error::msg)?;
    let data_dir = args.data_dir.resolve()?;
    let path = existing_database(&data_dir)?;
    match changer(&data_dir)? {
        Changer::Here(_lock) => forget_here(&path, &address, &args),
        Changer::Running(hookscope) => forget_through(&hookscope, &address, &args),
    }
}

fn forget_here(path: &Path, address: &Address, args: &ForgetArgs) -> Result<()> {
    let limit = args.max_body.max_body.bytes();
    let mut conn = db::open_writer(path, Synchronous::Full)?;
    // What is not indexed yet is, so it is found by contact.
    indexer::run_to_end(&mut conn, limit, |_, _| {})?;
    let found = erasure::find(&conn, address, limit)?;
    if found.keyed.is_empty() && found.mentioning.is_empty() {
        bail!("nothing stored is about or mentions {}", found.email);
    }
    if let Some(file) = &args.export {
        // Exactly what is erased next: about them and mentioning them.
        let filter = EventFilter {
            forget: Some(found.email.clone()),
            ..EventFilter::default()
        };
        let count = export::export_to_file(path, &filter, Format::Json, file, limit)?;
        said_exported(count, &found.email, file);
    }
    confirm(
        &found.email,
        found.keyed.len() as u64,
        found.mentioning.len() as u64,
        args.yes,
    )?;
    let report = erasure::forget(&mut conn, &found, limit)?;
    erasure::scrub(&conn)?;
    said_forgotten(&report);
    Ok(())
}

/// The same, by the running Hookscope: its preview, its export, its erasure.
fn forget_through(
    hookscope: &RunningHookscope,
    address: &Address,
    args: &ForgetArgs,
) -> Result<()> {
    let email = address.as_str();
    let found: ErasureReport = hookscope.get(&["api", "contacts", email, "erasure"])?;
    if let Some(file) = &args.export {
        let mut url = hookscope.url(&["api", "export"]);
        url.query_pairs_mut()
            .append_pair("forget", email)
            .append_pair("format", "json");
        hookscope.download(hookscope.request(Method::GET, url), file)?;
        said_exported(found.deliveries + found.mentioning, &found.email, file);
    }
    confirm(&found.email, found.deliveries, found.mentioning, args.yes)?;
    let report: ErasureReport = hookscope
        .call(hookscope.request(Method::DELETE, hookscope.url(&["api", "contacts", email])))?;
    said_forgotten(&report);
    Ok(())
}

fn said_exported(count: u64, email: &str, file: &Path) {
    eprintln!(
        "Wrote the {count} deliveries about or mentioning {email} to {}.",
        file.display()
    );
}

/// Says what goes, and asks unless told not to.
fn confirm(email: &str, about: u64, mentioning: u64, yes: bool) -> Result<()> {
    eprintln!(
        "{email}: {about} deliveries about them and {mentioning} other deliveries that mention their email."
    );
    if yes {
        return Ok(());
    }
    eprint!("Erase them for good? [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if !matches!(answer.trim(), "y" | "Y" | "yes") {
        bail!("nothing erased");
    }
    Ok(())
}

fn said_forgotten(report: &ErasureReport) {
    println!(
        "Forgot {}: {} deliveries about them and {} that mentioned them.",
        report.email, report.deliveries, report.mentioning
    );
}

#[derive(Args)]
pub struct RetentionArgs {
    #[command(flatten)]
    pub data_dir: DataDirArg,
    /// Days to keep deliveries, or `off` to keep them until deleted [default: show the
    /// policy]
    pub days: Option<String>,
    /// Set this endpoint's own (name or id; `off` goes back to the install's)
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Say how many deliveries the new retention would prune now, and change nothing
    #[arg(long, requires = "days")]
    pub dry_run: bool,
}

/// Shows or sets how long deliveries are kept. A running Hookscope makes the change and
/// prunes at once; with none, the next start does.
pub fn retention(args: RetentionArgs) -> Result<()> {
    let data_dir = args.data_dir.resolve()?;
    let path = existing_database(&data_dir)?;
    let change = match &args.days {
        Some(days) => {
            let days = match days.trim() {
                "off" | "none" => None,
                number => Some(number.parse::<u32>().map_err(|_| {
                    anyhow::anyhow!(
                        "{number:?}: give a number of days from 1 to {}, or off",
                        retention::MOST_DAYS
                    )
                })?),
            };
            retention::check_days(days)?;
            let endpoint = match &args.endpoint {
                Some(wanted) => Some(
                    crate::endpoint::resolve_endpoint(
                        &hookscope_core::store::endpoints::list(&db::open_reader(&path)?)?,
                        Some(wanted),
                    )?
                    .id,
                ),
                None => None,
            };
            Some(retention::PolicyChange { days, endpoint })
        }
        None => None,
    };
    let policy = match changer(&data_dir)? {
        Changer::Here(_lock) => {
            let conn = db::open_writer(&path, Synchronous::Full)?;
            if let Some(change) = change {
                let preview = retention::preview(&conn, now_micros(), &change)?;
                if said_preview(&preview, args.dry_run) {
                    retention::set_days(&conn, change.endpoint.as_deref(), change.days)?;
                    if preview.after_change > 0 {
                        println!(
                            "{} past it: Hookscope prunes them at its next start.",
                            deliveries(preview.after_change)
                        );
                    }
                } else {
                    return Ok(());
                }
            }
            retention::policy(&conn)?
        }
        Changer::Running(hookscope) => {
            if let Some(change) = change {
                let body = serde_json::json!({ "days": change.days, "endpoint": change.endpoint });
                let preview: retention::PrunePreview =
                    hookscope.send(Method::POST, &["api", "retention", "preview"], &body)?;
                if !said_preview(&preview, args.dry_run) {
                    return Ok(());
                }
                let policy = hookscope.send(Method::PUT, &["api", "retention"], &body)?;
                if preview.after_change > 0 {
                    println!(
                        "{} past it: the running Hookscope prunes them now.",
                        deliveries(preview.after_change)
                    );
                }
                policy
            } else {
                hookscope.get(&["api", "retention"])?
            }
        }
    };
    match policy.days {
        Some(days) => println!("Deliveries are kept {days} days."),
        None => println!("Deliveries are kept until you delete them."),
    }
    for (endpoint, days) in &policy.endpoints {
        println!("{endpoint}: kept {days} days.");
    }
    if let Some(run) = &policy.last_run {
        println!("Last pruned at {}: {} deliveries.", run.at, run.pruned);
    }
    Ok(())
}

/// A dry run says what would go and stops (false); else true, the change goes on.
fn said_preview(preview: &retention::PrunePreview, dry_run: bool) -> bool {
    if dry_run {
        println!(
            "With this retention, {} would be pruned now (nothing changed).",
            deliveries(preview.after_change)
        );
    }
    !dry_run
}

fn deliveries(n: u64) -> String {
    if n == 1 {
        "1 delivery".into()
    } else {
        format!("{n} deliveries")
    }
}
