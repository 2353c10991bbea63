//! What runs beside the listeners for as long as Hookscope does: endpoint changes made by
//! the command line, public URLs remembered.

use std::sync::Arc;
use std::time::Duration;

use crate::http::state::AppState;
use crate::store::endpoints;
use crate::store::settings::{self, Setting};

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
            let version = state.store.directory.version();
            match state.store.read(endpoints::list).await {
                Ok(list) => {
                    state.store.directory.refresh(list, version);
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
    let mut status = state.public.tunnels.subscribe();
    tokio::spawn(async move {
        let mut stored: Option<String> = None;
        while status.changed().await.is_ok() {
            let url = status.borrow_and_update().public_url.clone();
            if let Some(url) = url.filter(|u| stored.as_ref() != Some(u)) {
                let value = url.clone();
                let saved = state
                    .store
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

/// Retention: a run at start, every [`PRUNE_EVERY`] and whenever the policy changes
/// (see [`crate::service::erasure::Retention::prune_once`]).
pub fn prune_by_age(state: Arc<AppState>) {
    tokio::spawn(async move {
        loop {
            if let Err(error) = state.retention.prune_once().await {
                if state.shutdown.is_cancelled() {
                    return;
                }
                tracing::warn!(%error, "pruning by age stopped; trying again later");
            }
            tokio::select! {
                _ = state.shutdown.cancelled() => return,
                _ = tokio::time::sleep(PRUNE_EVERY) => {}
                _ = state.retention.changed() => {}
            }
        }
    });
}
