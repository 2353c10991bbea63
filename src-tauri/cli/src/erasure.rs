//! `hookscope forget` and `hookscope retention`: a person's data erased on request, and
//! how long deliveries are kept.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use hookscope_core::app::DEFAULT_MAX_BODY;
use hookscope_core::capture::mentions::Address;
use hookscope_core::exchange::export::{self, Format};
use hookscope_core::store::db::{self, Synchronous};
use hookscope_core::store::events::query::EventFilter;
use hookscope_core::store::shapes::ShapeLearner;
use hookscope_core::store::{erasure, indexer, retention};
use hookscope_core::timefmt::now_micros;

use crate::{DataDirArg, existing_database};

#[derive(Args)]
pub struct ForgetArgs {
    #[command(flatten)]
    pub data_dir: DataDirArg,
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
/// derived from it, and the file is scrubbed. Works while Hookscope runs.
pub fn forget(args: ForgetArgs) -> Result<()> {
    // One whole address or nothing: a blank or a fragment would match everything.
    let address = Address::parse(&args.email).map_err(anyhow::Error::msg)?;
    let data_dir = args.data_dir.resolve()?;
    let path = existing_database(&data_dir)?;
    let mut conn = db::open_writer(&path, Synchronous::Full)?;
    if let Ok(_held) = hookscope_core::app::lock_data_dir(&data_dir) {
        // No Hookscope runs: what is not indexed yet is, so it is found by contact.
        indexer::run_to_end(&mut conn, DEFAULT_MAX_BODY.bytes(), |_, _| {})?;
    }
    let found = erasure::find(&conn, &address, DEFAULT_MAX_BODY.bytes())?;
    if found.keyed.is_empty() && found.mentioning.is_empty() {
        bail!("nothing stored is about or mentions {}", found.email);
    }
    if let Some(file) = &args.export {
        // Exactly what is erased next: about them and mentioning them.
        let filter = EventFilter {
            forget: Some(found.email.clone()),
            ..EventFilter::default()
        };
        let count =
            export::export_to_file(&path, &filter, Format::Json, file, DEFAULT_MAX_BODY.bytes())?;
        eprintln!(
            "Wrote the {count} deliveries about or mentioning {} to {}.",
            found.email,
            file.display()
        );
    }
    eprintln!(
        "{}: {} deliveries about them and {} other deliveries that mention their email.",
        found.email,
        found.keyed.len(),
        found.mentioning.len()
    );
    if !args.yes {
        eprint!("Erase them for good? [y/N] ");
        std::io::stderr().flush()?;
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            bail!("nothing erased");
        }
    }
    let report = erasure::forget(
        &mut conn,
        &mut ShapeLearner::default(),
        &found,
        DEFAULT_MAX_BODY.bytes(),
    )?;
    erasure::scrub(&conn)?;
    println!(
        "Forgot {}: {} deliveries about them and {} that mentioned them.",
        report.email, report.deliveries, report.mentioning
    );
    Ok(())
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

/// Shows or sets how long deliveries are kept. A running Hookscope prunes within ten
/// minutes of a change made here (at once when made from the window or the API).
pub fn retention(args: RetentionArgs) -> Result<()> {
    let data_dir = args.data_dir.resolve()?;
    let conn = db::open_writer(&existing_database(&data_dir)?, Synchronous::Full)?;
    if let Some(days) = &args.days {
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
                    &hookscope_core::store::endpoints::list(&conn)?,
                    Some(wanted),
                )?
                .id,
            ),
            None => None,
        };
        let change = retention::PolicyChange { days, endpoint };
        let preview = retention::preview(&conn, now_micros(), &change)?;
        if args.dry_run {
            println!(
                "With this retention, {} would be pruned now (nothing changed).",
                deliveries(preview.after_change)
            );
            return Ok(());
        }
        retention::set_days(&conn, change.endpoint.as_deref(), change.days)?;
        if preview.after_change > 0 {
            println!(
                "{} past it: a running Hookscope prunes them within ten minutes, or at its next start.",
                deliveries(preview.after_change)
            );
        }
    }
    let policy = retention::policy(&conn)?;
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

fn deliveries(n: u64) -> String {
    if n == 1 {
        "1 delivery".into()
    } else {
        format!("{n} deliveries")
    }
}
