//! What runs beside the listeners for as long as Hookscope does: public URLs remembered,
//! deliveries pruned by age.

use std::sync::Arc;
use std::time::Duration;

use crate::http::state::AppState;
use crate::store::settings::{self, Setting};

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
