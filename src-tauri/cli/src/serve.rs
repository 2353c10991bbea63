//! `hookscope serve`: the listener and the UI without a window.

use anyhow::Result;
use clap::Args;
use hookscope_core::app::{self, ServeConfig};

use crate::runtime;

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: ServeConfig,
}

pub fn run(args: ServeArgs) -> Result<()> {
    let options = args.config.options()?;
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
