//! `hookscope serve`: the listener and the UI without a window.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use hookscope_core::app::{self, DEFAULT_MAX_BODY, ServeOptions};
use hookscope_core::delivery::follow::FollowTarget;
use hookscope_core::http::listener::ListenerLimits;
use hookscope_core::store::db::Synchronous;
use hookscope_core::tunnel::{TunnelChoice, TunnelOptions};

use crate::{DataDirArg, runtime};

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub data_dir: DataDirArg,
    /// Address of the webhook listener (what a tunnel points at); port 0 picks a free one
    #[arg(
        long,
        env = "HOOKSCOPE_INGEST",
        default_value = app::DEFAULT_INGEST,
        value_name = "ADDR"
    )]
    pub ingest: SocketAddr,
    /// Address of the UI and API (loopback only); port 0 picks a free one
    #[arg(
        long,
        env = "HOOKSCOPE_UI",
        default_value = app::DEFAULT_UI,
        value_name = "ADDR"
    )]
    pub ui: SocketAddr,
    /// Largest delivery body accepted, in bytes; larger ones get 413
    #[arg(long, env = "HOOKSCOPE_MAX_BODY", default_value_t = DEFAULT_MAX_BODY, value_name = "BYTES")]
    pub max_body: usize,
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
    /// systeme.io's API base URL (a stand-in for rehearsals and tests).
    #[arg(long, env = "HOOKSCOPE_SYSTEME_API", value_name = "URL", hide = true)]
    pub systeme_api: Option<String>,
}

pub fn run(args: ServeArgs) -> Result<()> {
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
        ui_limits: ListenerLimits::ui_default(),
        sync: args.sync,
        follow: match (&args.follow, &args.follow_token) {
            (Some(url), Some(token)) => Some(FollowTarget::new(url, token)?),
            _ => None,
        },
        sync_timing: Default::default(),
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
        let failed = running.failed();
        let store_failed = tokio::select! {
            () = stop_requested => false,
            () = failed => true,
        };
        tracing::info!("stopping: finishing in-flight deliveries");
        running.stop().await;
        tracing::info!("stopped");
        if store_failed {
            // Non-zero, so a supervisor (the packaged systemd unit) starts it again.
            anyhow::bail!(
                "the store's writer failed again and again (the log above says why); Hookscope stopped so that it can be started again"
            );
        }
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
