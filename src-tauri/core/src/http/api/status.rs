//! The install at a glance: version, addresses, counts, tunnel, relay followed, notices,
//! store trouble.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;

use crate::http::state::AppState;

use crate::store::events;
use crate::store::indexer::IndexProgress;

use super::answer::ApiResult;
use super::tunnel::tunnel_view;
use super::views::Status;

pub(super) async fn status(State(state): State<Arc<AppState>>) -> ApiResult<Json<Status>> {
    // The position is read with the counts, in one read of the derived file: the
    // indexer announces a batch after its commit, so the announced progress can lag the
    // counts. What is left is the newest delivery's seq past it (counting the rows would
    // read the rest of the table at every call, a million during a catch-up).
    let newest = *state.store.writer.watch_committed().borrow();
    let (indexing, counts) = state
        .store
        .read(move |conn| {
            let read = conn.unchecked_transaction()?;
            let through = crate::store::indexer::position(&read)?;
            let indexing = IndexProgress {
                through,
                behind: (newest - through).max(0),
            };
            Ok((indexing, events::counts(&read, indexing.behind)?))
        })
        .await?;
    let default = state.store.default_endpoint()?;
    Ok(Json(Status {
        contacts: counts.contacts,
        events: counts.events,
        follow: state.follow.view(),
        indexing,
        ingest: state.public.ingest_base.clone(),
        listening: true,
        max_body: state.store.max_body.bytes(),
        notices: state.notices.clone(),
        sqlite_memory_bytes: sqlite_memory_used(),
        store: state.store.writer.trouble(),
        tunnel: tunnel_view(&state, &default),
        version: env!("CARGO_PKG_VERSION").to_string(),
        webhook_url: state.public.webhook_url(&default),
        default_endpoint: default.id,
    }))
}

pub(super) fn sqlite_memory_used() -> i64 {
    // SAFETY: a read of SQLite's global allocation counter; no arguments, no state.
    unsafe { rusqlite::ffi::sqlite3_memory_used() }
}
