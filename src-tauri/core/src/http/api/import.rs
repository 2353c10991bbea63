//! An export loaded back through the running Hookscope (`hookscope import` beside it),
//! read as it arrives.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use futures_util::TryStreamExt;
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::exchange::import::ImportReport;
use crate::http::state::AppState;

use super::answer::ApiResult;

/// The body is a JSON array or NDJSON of exported events (what `GET /api/export` gives);
/// → the import's report. Events already present are skipped.
pub(super) async fn import_events(
    State(state): State<Arc<AppState>>,
    body: Body,
) -> ApiResult<Json<ImportReport>> {
    let chunks = body.into_data_stream().map_err(std::io::Error::other);
    let input = SyncIoBridge::new(StreamReader::new(chunks));
    let guard = state.access.token_guard.clone();
    Ok(Json(state.store.import(input, guard).await?))
}
