//! What runs beside the listeners for as long as Hookscope does: endpoint changes made by
//! the command line, public URLs remembered.

use std::sync::Arc;
use std::time::Duration;

use crate::error::Result;
use crate::http::state::AppState;
use crate::store::settings::{self, Setting};
use crate::store::{endpoints, erasure, retention};
use crate::tunnel::{self, TunnelChoice};

/// The tunnel chosen last time; on a first run cloudflared when it is installed (a quick
/// tunnel needs no account), else none.
pub async fn remembered_tunnel(state: &AppState) -> Result<TunnelChoice> {
    let stored = state
        .read(|conn| settings::get_setting(conn, Setting::Tunnel))
        .await?;
    if let Some(choice) = stored.and_then(|text| text.parse().ok()) {
        return Ok(choice);
    }
    Ok(if tunnel::cloudflared_available(&state.tunnels.options()) {
        TunnelChoice::Cloudflared
    } else {
        TunnelChoice::Off
    })
}

/// Endpoint changes made outside this process (`hookscope endpoints secret`) reach the
/// ingest directory within this long. Reading the few endpoint rows costs microseconds.
const ENDPOINTS_REFRESH: Duration = Duration::from_millis(250);

pub fn follow_endpoint_changes(state: Arc<AppState>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(ENDPOINTS_REFRESH);
        // Said once per spell of failures, not four times a second.
        let mut failing = false;
        loop {
            tokio::select! {
                _ = state.shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let version = state.directory.version();
            match state.read(endpoints::list).await {
                Ok(list) => {
                    state.directory.refresh(list, version);
                    if std::mem::take(&mut failing) {
                        tracing::info!("endpoints are read again");
                    }
                }
                Err(error) if !failing => {
                    tracing::warn!(%error, "cannot re-read endpoints; retrying quietly");
                    failing = true;
                }
                Err(_) => {}
            }
        }
    });
}

/// Keeps the last public URL shown, so a new one after a restart is announced as a change.
pub fn remember_public_urls(state: Arc<AppState>) {
    let mut status = state.tunnels.subscribe();
    tokio::spawn(async move {
        let mut stored: Option<String> = None;
        while status.changed().await.is_ok() {
            let url = status.borrow_and_update().public_url.clone();
            if let Some(url) = url.filter(|u| stored.as_ref() != Some(u)) {
                let value = url.clone();
                let saved = state
                    .writer
                    .run(move |conn| settings::put_setting(conn, Setting::TunnelLastUrl, &value))
                    .await;
                if saved.is_err() {
                    return; // shutting down
                }
                stored = Some(url);
            }
        }
    });
}

/// How often expired deliveries are looked for (and at start, and when the policy changes).
const PRUNE_EVERY: Duration = Duration::from_secs(10 * 60);

/// Retention: prunes deliveries past their endpoint's or the install's retention, a batch
/// per writer turn so acknowledgements never wait long; finishes a run a crash cut short.
pub fn prune_by_age(state: Arc<AppState>) {
    tokio::spawn(async move {
        loop {
            if let Err(error) = prune_once(&state).await {
                if state.shutdown.is_cancelled() {
                    return;
                }
                tracing::warn!(%error, "pruning by age stopped; trying again later");
            }
            tokio::select! {
                _ = state.shutdown.cancelled() => return,
                _ = tokio::time::sleep(PRUNE_EVERY) => {}
                _ = state.retention_changed.notified() => {}
            }
        }
    });
}

async fn prune_once(state: &AppState) -> Result<()> {
    let (policy, unfinished) = state
        .read(|conn| {
            Ok((
                retention::policy(conn)?,
                erasure::scrub_pending(conn)?
                    || settings::get_setting(conn, Setting::ErasureShapesPending)?.is_some(),
            ))
        })
        .await?;
    if policy.days.is_none() && policy.endpoints.is_empty() && !unfinished {
        return Ok(());
    }
    let now = crate::timefmt::now_micros();
    let limit = state.max_body;
    let mut pruned = 0;
    loop {
        let batch = state
            .writer
            .run(move |conn| retention::prune_batch(conn, now, limit))
            .await?;
        if batch == 0 {
            break;
        }
        pruned += batch;
    }
    state
        .writer
        .run_learning(move |conn, shapes| retention::finish(conn, shapes, pruned, now, limit))
        .await?;
    if pruned > 0 {
        tracing::info!(pruned, "deliveries past their retention pruned");
    }
    Ok(())
}
