//! What a Hookscope is started with, in one type: `hookscope serve` takes it as flags, the
//! desktop app from the same environment variables, and [`ServeConfig::options`] turns it
//! into the [`ServeOptions`] that [`super::start`] runs (with the limits and timings that
//! are not flags).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser};

use super::{
    BodyLimit, DEFAULT_INGEST, DEFAULT_MAX_BODY, DEFAULT_UI, ServeOptions, default_data_dir,
};
use crate::delivery::follow::FollowTarget;
use crate::error::{Error, Result};
use crate::store::db::Synchronous;
use crate::tunnel::{TunnelChoice, TunnelOptions};

/// Not `Debug`: it holds tokens.
#[derive(Clone, Args)]
pub struct ServeConfig {
    /// Where captures are kept [default: the platform data directory]
    #[arg(long, env = "HOOKSCOPE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address of the webhook listener (what a tunnel points at); port 0 picks a free one
    #[arg(
        long,
        env = "HOOKSCOPE_INGEST",
        default_value = DEFAULT_INGEST,
        value_name = "ADDR"
    )]
    pub ingest: SocketAddr,
    /// Address of the UI and API (loopback only); port 0 picks a free one
    #[arg(
        long,
        env = "HOOKSCOPE_UI",
        default_value = DEFAULT_UI,
        value_name = "ADDR"
    )]
    pub ui: SocketAddr,
    /// Largest delivery body accepted, in bytes; larger ones get 413
    #[arg(long, env = "HOOKSCOPE_MAX_BODY", default_value_t = DEFAULT_MAX_BODY, value_name = "BYTES")]
    pub max_body: BodyLimit,
    /// SQLite durability: full (survives power loss) or normal (survives crashes)
    #[arg(
        long,
        env = "HOOKSCOPE_SYNCHRONOUS",
        default_value = "full",
        value_name = "MODE"
    )]
    pub synchronous: Synchronous,
    /// Public URL through a tunnel: cloudflared, bore, bore:HOST, manual:URL or off.
    /// Remembered for the next start; the default is the last choice (first run:
    /// cloudflared when it is installed)
    #[arg(long, env = "HOOKSCOPE_TUNNEL", value_name = "TUNNEL")]
    pub tunnel: Option<TunnelChoice>,
    /// A loopback address for a tunnel or reverse proxy you run yourself: the sender it
    /// appends to X-Forwarded-For is recorded and checked against systeme.io's addresses
    #[arg(long, env = "HOOKSCOPE_PROXY", value_name = "ADDR")]
    pub proxy: Option<SocketAddr>,
    /// The cloudflared program, when it is not on PATH
    #[arg(long, env = "HOOKSCOPE_CLOUDFLARED", value_name = "PATH")]
    pub cloudflared: Option<PathBuf>,
    /// Your ngrok authtoken (else the one saved from the UI)
    #[arg(
        long,
        env = "NGROK_AUTHTOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub ngrok_authtoken: Option<String>,
    /// ngrok's service address, for self-hosted setups
    #[arg(
        long,
        env = "HOOKSCOPE_NGROK_SERVER",
        value_name = "HOST:PORT",
        hide = true
    )]
    pub ngrok_server: Option<String>,
    /// Make this install a relay: a loopback address where followers pull its deliveries
    /// (reach it through your HTTPS reverse proxy or an SSH tunnel); prints the sync URL
    /// and the sync token they need
    #[arg(long, env = "HOOKSCOPE_SYNC", value_name = "ADDR")]
    pub sync: Option<SocketAddr>,
    /// Follow a relay: pull what it received while this one was off, then follow it live
    /// (remembered; https://, or http:// to this machine through an SSH tunnel)
    #[arg(
        long,
        env = "HOOKSCOPE_FOLLOW",
        value_name = "URL",
        requires = "follow_token"
    )]
    pub follow: Option<String>,
    /// The relay's sync token (its `Sync token:` line)
    #[arg(
        long,
        env = "HOOKSCOPE_FOLLOW_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub follow_token: Option<String>,
    /// POST each alert as JSON to this URL (Slack, Discord, ntfy or your own receiver;
    /// its `text` field says it all): for a relay nobody watches
    #[arg(long, env = "HOOKSCOPE_ALERT_WEBHOOK", value_name = "URL")]
    pub alert_webhook: Option<String>,
    /// How often silences are looked for, in seconds (tests shorten it).
    #[arg(long, env = "HOOKSCOPE_ALERT_CHECK_EVERY", value_name = "SECONDS", hide = true,
          value_parser = clap::value_parser!(u64).range(1..=60))]
    pub alert_check_every: Option<u64>,
    /// systeme.io's API base URL (a stand-in for rehearsals and tests).
    #[arg(long, env = "HOOKSCOPE_SYSTEME_API", value_name = "URL", hide = true)]
    pub systeme_api: Option<String>,
}

/// The configuration alone, for a start without flags.
#[derive(Parser)]
#[command(name = "hookscope-desktop", no_binary_name = true)]
struct FromEnvironment {
    #[command(flatten)]
    config: ServeConfig,
}

impl ServeConfig {
    /// The configuration the environment gives (the desktop app's: it takes no flags).
    /// Errors name the variable and say what is wrong with its value.
    pub fn from_env() -> Result<ServeConfig> {
        let command = blank_env_is_unset(FromEnvironment::command());
        // clap names the flag; a desktop user set a variable, so name that too.
        let variables: Vec<(String, String)> = command
            .get_arguments()
            .filter_map(|arg| {
                let variable = arg.get_env()?;
                std::env::var_os(variable)?;
                Some((
                    format!("--{}", arg.get_long()?),
                    variable.to_string_lossy().into_owned(),
                ))
            })
            .collect();
        let invalid = |error: clap::Error| {
            let said = error.render().to_string();
            let named: Vec<&str> = variables
                .iter()
                .filter(|(flag, _)| {
                    said.contains(&format!("{flag} ")) || said.contains(&format!("{flag}'"))
                })
                .map(|(_, variable)| variable.as_str())
                .collect();
            Error::Invalid(match named.is_empty() {
                true => said.trim_end().to_string(),
                false => format!("{} (set by {})", said.trim_end(), named.join(", ")),
            })
        };
        let matches = command
            .try_get_matches_from(std::iter::empty::<String>())
            .map_err(invalid)?;
        Ok(FromEnvironment::from_arg_matches(&matches)
            .map_err(invalid)?
            .config)
    }

    /// What [`super::start`] runs: the data folder resolved, the follow target checked,
    /// the limits and timings that are not flags at their defaults.
    pub fn options(self) -> Result<ServeOptions> {
        let follow = match (&self.follow, &self.follow_token) {
            (Some(url), Some(token)) => Some(FollowTarget::new(url, token)?),
            (Some(_), None) => {
                return Err(Error::Invalid(
                    "HOOKSCOPE_FOLLOW needs HOOKSCOPE_FOLLOW_TOKEN".into(),
                ));
            }
            _ => None,
        };
        Ok(ServeOptions {
            data_dir: match self.data_dir {
                Some(dir) => dir,
                None => default_data_dir()?,
            },
            ingest: self.ingest,
            ui: self.ui,
            max_body: self.max_body,
            synchronous: self.synchronous,
            tunnel: self.tunnel,
            tunnel_options: TunnelOptions {
                cloudflared: self.cloudflared,
                ngrok_authtoken: self.ngrok_authtoken,
                ngrok_server: self.ngrok_server,
            },
            proxy: self.proxy,
            systeme_api: self.systeme_api,
            sync: self.sync,
            follow,
            alert_webhook: self.alert_webhook,
            alert_check_every: self
                .alert_check_every
                .map(std::time::Duration::from_secs)
                .unwrap_or(super::DEFAULT_ALERT_CHECK_EVERY),
            ..ServeOptions::defaults()
        })
    }
}

/// A variable set to blanks counts as not set (`HOOKSCOPE_TUNNEL= hookscope serve` keeps
/// the remembered tunnel), in `command` and all its subcommands.
pub fn blank_env_is_unset(command: clap::Command) -> clap::Command {
    let blank: Vec<clap::Id> = command
        .get_arguments()
        .filter(|arg| {
            arg.get_env()
                .and_then(std::env::var_os)
                .is_some_and(|value| value.to_string_lossy().trim().is_empty())
        })
        .map(|arg| arg.get_id().clone())
        .collect();
    let mut command = blank.into_iter().fold(command, |command, id| {
        command.mut_arg(id, |arg| arg.env(None))
    });
    let names: Vec<String> = command
        .get_subcommands()
        .map(|sub| sub.get_name().to_string())
        .collect();
    for name in names {
        command = command.mut_subcommand(name, blank_env_is_unset);
    }
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> std::result::Result<ServeConfig, clap::Error> {
        let matches = FromEnvironment::command().try_get_matches_from(args)?;
        Ok(FromEnvironment::from_arg_matches(&matches)?.config)
    }

    #[test]
    fn defaults_are_the_fixed_addresses() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.ingest.to_string(), DEFAULT_INGEST);
        assert_eq!(config.ui.to_string(), DEFAULT_UI);
        assert_eq!(config.max_body, DEFAULT_MAX_BODY);
        assert_eq!(config.synchronous, Synchronous::Full);
    }

    #[test]
    fn a_bad_value_says_which_flag() {
        let Err(error) = parse(&["--ingest", "not-an-address"]) else {
            panic!("an address that is not one is refused");
        };
        assert!(error.to_string().contains("--ingest"), "{error}");
        let Err(error) = parse(&["--follow", "https://relay.example"]) else {
            panic!("a relay without its token is refused");
        };
        assert!(error.to_string().contains("follow-token"), "{error}");
    }

    #[test]
    fn credentials_in_a_follow_url_are_refused_when_resolved() {
        let config = parse(&[
            "--data-dir",
            "/tmp/x",
            "--follow",
            "https://me:secret@relay.example",
            "--follow-token",
            "t",
        ])
        .unwrap();
        assert!(config.options().is_err());
    }
}
