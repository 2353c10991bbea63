//! `hookscope endpoints`: list endpoints; set an endpoint's secret, forward target or
//! chosen answer (through the running Hookscope when there is one: it takes the change up
//! at once).

use std::io::Write;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use hookscope_core::store::db::{self, Synchronous};
use hookscope_core::store::endpoints;

use reqwest::Method;

use crate::changes::{Changer, changer};
use crate::endpoint::{read_secret, resolve_endpoint};
use crate::{DataDirArg, existing_database};

#[derive(Args)]
pub struct EndpointsArgs {
    #[command(flatten)]
    pub data_dir: DataDirArg,
    #[command(subcommand)]
    pub action: Option<EndpointAction>,
}

#[derive(Subcommand)]
pub enum EndpointAction {
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

pub fn run(args: EndpointsArgs) -> Result<()> {
    let data_dir = args.data_dir.resolve()?;
    let path = existing_database(&data_dir)?;
    let list = endpoints::list(&db::open_reader(&path)?)?;
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
    let target = resolve_endpoint(&list, Some(&named))?.id;
    let change = EndpointChange::from_action(action)?;
    let changed = match changer(&data_dir)? {
        Changer::Here(_lock) => {
            change.apply(&mut db::open_writer(&path, Synchronous::Full)?, &target)?
        }
        // The running Hookscope takes it up at once (its ingest, the window).
        Changer::Running(hookscope) => hookscope.send(
            Method::PATCH,
            &["api", "endpoints", &target],
            &change.patch(),
        )?,
    };
    change.report(&changed);
    Ok(())
}

/// One change to an endpoint, made here or by the running Hookscope.
enum EndpointChange {
    Secret(Option<String>),
    Forward(Option<String>),
    Respond(Option<endpoints::CannedResponse>),
}

impl EndpointChange {
    fn from_action(action: EndpointAction) -> Result<EndpointChange> {
        Ok(match action {
            EndpointAction::Secret { secret, clear, .. } => {
                EndpointChange::Secret(match (clear, secret) {
                    (true, _) => None,
                    (false, Some(secret)) => Some(secret),
                    (false, None) => Some(read_secret("the secret")?),
                })
            }
            EndpointAction::Forward { url, clear, .. } => {
                EndpointChange::Forward(if clear { None } else { url })
            }
            EndpointAction::Respond {
                status,
                body,
                delay_ms,
                headers,
                clear,
                ..
            } => EndpointChange::Respond(match (clear, status) {
                (false, Some(status)) => Some(endpoints::CannedResponse {
                    status,
                    headers: headers
                        .iter()
                        .map(|h| {
                            hookscope_core::capture::headers_file::parse_line(h)
                                .with_context(|| format!("-H {h:?}: expected `Name: value`"))
                        })
                        .collect::<Result<_>>()?,
                    body,
                    delay_ms,
                }),
                _ => None,
            }),
        })
    }

    fn apply(&self, conn: &mut db::Connection, target: &str) -> Result<endpoints::Endpoint> {
        Ok(match self {
            EndpointChange::Secret(secret) => {
                endpoints::set_secret(conn, target, secret.as_deref())?
            }
            EndpointChange::Forward(url) => {
                endpoints::set_forward_to(conn, target, url.as_deref())?
            }
            EndpointChange::Respond(response) => {
                endpoints::set_response(conn, target, response.as_ref())?
            }
        })
    }

    /// `PATCH /api/endpoints/{id}`'s body.
    fn patch(&self) -> serde_json::Value {
        match self {
            EndpointChange::Secret(secret) => serde_json::json!({ "secret": secret }),
            EndpointChange::Forward(url) => serde_json::json!({ "forward_to": url }),
            EndpointChange::Respond(response) => serde_json::json!({ "response": response }),
        }
    }

    fn report(&self, changed: &endpoints::Endpoint) {
        match self {
            EndpointChange::Secret(_) => eprintln!(
                "{}: {}. Past deliveries were re-checked.",
                changed.name,
                if changed.has_secret {
                    "secret set"
                } else {
                    "secret cleared"
                }
            ),
            EndpointChange::Forward(_) => match &changed.forward_to {
                Some(to) => eprintln!("{}: every delivery is forwarded to {to}.", changed.name),
                None => eprintln!("{}: not forwarded any more.", changed.name),
            },
            EndpointChange::Respond(_) => match &changed.response {
                Some(r) => eprintln!(
                    "{}: deliveries are answered {} after {} ms (and stored all the same).",
                    changed.name, r.status, r.delay_ms
                ),
                None => eprintln!("{}: deliveries get a fast 200 again.", changed.name),
            },
        }
    }
}
