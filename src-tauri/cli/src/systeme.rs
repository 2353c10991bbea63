//! `hookscope systeme`: the systeme.io account (API key, Settings webhooks, registration).

use std::io::Write;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use hookscope_core::store::db::{self, Synchronous};
use hookscope_core::store::endpoints;
use hookscope_core::store::settings::{self, Setting};

use crate::endpoint::{read_secret, resolve_endpoint};
use crate::{DataDirArg, existing_database, runtime};

#[derive(Args)]
pub struct SystemeArgs {
    #[command(flatten)]
    pub data_dir: DataDirArg,
    /// systeme.io's API base URL (a stand-in for rehearsals and tests)
    #[arg(long, env = "HOOKSCOPE_SYSTEME_API", value_name = "URL", hide = true)]
    pub systeme_api: Option<String>,
    #[command(subcommand)]
    pub action: SystemeAction,
}

#[derive(Subcommand)]
pub enum SystemeAction {
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

pub fn run(args: SystemeArgs) -> Result<()> {
    use hookscope_core::systeme;
    let data_dir = args.data_dir.resolve()?;
    let path = existing_database(&data_dir)?;
    let mut conn = db::open_writer(&path, Synchronous::Full)?;
    let key = || -> Result<String> {
        settings::get_setting(&conn, Setting::SystemeApiKey)?
            .context("no systeme.io API key yet: `hookscope systeme key` stores one")
    };
    match args.action {
        SystemeAction::Key { key, clear } => {
            let key = match (clear, key) {
                (true, _) => None,
                (false, Some(key)) => Some(key),
                (false, None) => Some(read_secret("the API key")?),
            };
            match key.map(|k| k.trim().to_string()) {
                Some(key) if key.is_empty() => bail!("the API key is empty"),
                Some(key) => {
                    settings::put_setting(&conn, Setting::SystemeApiKey, &key)?;
                    eprintln!("systeme.io API key stored in {}.", path.display());
                }
                None => {
                    settings::delete_setting(&conn, Setting::SystemeApiKey)?;
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
            let target = resolve_endpoint(&list, endpoint.as_deref())?;
            let base = match url {
                Some(url) => url,
                None => settings::get_setting(&conn, Setting::TunnelLastUrl)?
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
