//! The install at a glance: version, addresses, counts, tunnel, notices, store trouble.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::json;

use crate::http::state::AppState;

use crate::store::events;

use super::answer::ApiResult;
use super::tunnel::tunnel_view;

pub(super) async fn status(
    State(state): State<Arc<AppState>>,
) -> ApiResult<Json<serde_json::Value>> {
    let counts = state.read(events::counts).await?;
    let default = state.default_endpoint().await?;
    Ok(Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "listening": true,
        "ingest": state.ingest_base,
        "webhook_url": state.webhook_url(&default),
        "default_endpoint": default.id,
        "max_body": state.max_body,
        "events": counts.events,
        "contacts": counts.contacts,
        "tunnel": tunnel_view(&state, &default),
        "notices": state.notices,
        // Deliveries refused since the last one stored (a full disk): null while all is well.
        "store": state.writer.trouble(),
        // SQLite's own allocations (page caches, statements): where memory goes as the store grows.
        "sqlite_memory_bytes": sqlite_memory_used(),
    })))
}

pub(super) fn sqlite_memory_used() -> i64 {
    // SAFETY: a read of SQLite's global allocation counter; no arguments, no state.
    unsafe { rusqlite::ffi::sqlite3_memory_used() }
}
