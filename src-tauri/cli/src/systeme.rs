//! `hookscope systeme`: the systeme.io account (API key, Settings webhooks, registration).

use std::io::Write;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use hookscope_core::store::db::{self, Synchronous};
use hookscope_core::store::endpoints;
use hookscope_core::store::settings::{self, Setting};

use reqwest::Method;

use crate::changes::{Changer, RunningHookscope, changer};
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

/// Where a webhook's new secret is stored: here, or by the running Hookscope.
enum CliSecret<'c> {
    Here {
        conn: std::cell::RefCell<&'c mut db::Connection>,
        endpoint: String,
    },
    Running {
        hookscope: &'c RunningHookscope,
        endpoint: String,
    },
}

impl hookscope_core::systeme::SecretStore for CliSecret<'_> {
    async fn store(&self, secret: Option<String>) -> hookscope_core::Result<()> {
        match self {
            CliSecret::Here { conn, endpoint } => {
                let mut conn = conn.borrow_mut();
                endpoints::set_secret(&mut conn, endpoint, secret.as_deref()).map(|_| ())
            }
            CliSecret::Running {
                hookscope,
                endpoint,
            } => {
                let request = hookscope
                    .request(
                        Method::PATCH,
                        hookscope.url(&["api", "endpoints", endpoint]),
                    )
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(serde_json::json!({ "secret": secret }).to_string());
                hookscope
                    .answer(request)
                    .await
                    .map(|_| ())
                    .map_err(|error| hookscope_core::Error::Invalid(format!("{error:#}")))
            }
        }
    }
}

pub fn run(args: SystemeArgs) -> Result<()> {
    use hookscope_core::systeme;
    let data_dir = args.data_dir.resolve()?;
    let path = existing_database(&data_dir)?;
    let reads = db::open_reader(&path)?;
    let key = || -> Result<String> {
        settings::get_setting(&reads, Setting::SystemeApiKey)?
            .context("no systeme.io API key yet: `hookscope systeme key` stores one")
    };
    match args.action {
        SystemeAction::Key { key, clear } => {
            let key = match (clear, key) {
                (true, _) => None,
                (false, Some(key)) => Some(key),
                (false, None) => Some(read_secret("the API key")?),
            };
            let key = key.map(|k| k.trim().to_string());
            if key.as_deref() == Some("") {
                bail!("the API key is empty");
            }
            match changer(&data_dir)? {
                Changer::Here(_lock) => {
                    let conn = db::open_writer(&path, Synchronous::Full)?;
                    match &key {
                        Some(key) => settings::put_setting(&conn, Setting::SystemeApiKey, key)?,
                        None => settings::delete_setting(&conn, Setting::SystemeApiKey)?,
                    }
                }
                Changer::Running(hookscope) => {
                    let _: serde_json::Value = hookscope.send(
                        Method::PUT,
                        &["api", "systeme"],
                        &serde_json::json!({ "api_key": key }),
                    )?;
                }
            }
            match key {
                Some(_) => eprintln!("systeme.io API key stored in {}.", path.display()),
                None => eprintln!("systeme.io API key forgotten."),
            }
        }
        SystemeAction::Webhooks => {
            let client = systeme::Client::new(args.systeme_api.as_deref(), &key()?)?;
            let endpoints = endpoints::list(&reads)?;
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
            let list = endpoints::list(&reads)?;
            let target = resolve_endpoint(&list, endpoint.as_deref())?;
            let base = match url {
                Some(url) => url,
                None => settings::get_setting(&reads, Setting::TunnelLastUrl)?
                    .context("no public URL known yet: pass --url https://... or start a tunnel with `hookscope serve --tunnel cloudflared`")?,
            };
            let key = key()?;
            // systeme.io is asked from here; a new secret is stored by the store's writer.
            let changer = changer(&data_dir)?;
            let mut conn;
            let store = match &changer {
                Changer::Here(_lock) => {
                    conn = db::open_writer(&path, Synchronous::Full)?;
                    CliSecret::Here {
                        conn: std::cell::RefCell::new(&mut conn),
                        endpoint: target.id.clone(),
                    }
                }
                Changer::Running(hookscope) => CliSecret::Running {
                    hookscope,
                    endpoint: target.id.clone(),
                },
            };
            let registering = systeme::register_endpoint(
                args.systeme_api.as_deref(),
                &key,
                &target,
                &base,
                events,
                &store,
            );
            let registration = match &changer {
                Changer::Here(_) => runtime()?.block_on(registering)?,
                Changer::Running(hookscope) => hookscope.block_on(registering)?,
            };
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
