//! Replays: one event, a selection, or a contact's timeline sent again, and their history.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use bytes::Bytes;
use serde::Deserialize;

use crate::error::Error;
use crate::http::state::AppState;

use super::answer::{ApiError, ApiResult, json_body};
use super::views::{ReplayHistory, ReplayOutcome, ReplayOutcomes};

pub(super) async fn replay_event(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<crate::delivery::replay::ReplayResult>> {
    let request: crate::delivery::replay::ReplayRequest =
        if body.iter().all(u8::is_ascii_whitespace) {
            Default::default()
        } else {
            json_body(&body)?
        };
    Ok(Json(replay_one(&state, id, request).await?))
}

pub(super) async fn replay_one(
    state: &Arc<AppState>,
    id: String,
    request: crate::delivery::replay::ReplayRequest,
) -> ApiResult<crate::delivery::replay::ReplayResult> {
    let plan = state
        .store
        .read(move |conn| crate::delivery::replay::plan(conn, &id, &request))
        .await?;
    state.public.refuse_own_url("url", &plan.target)?;
    // Sent and recorded on a task of its own: a client that goes away meanwhile does not
    // leave a replay sent but missing from the history.
    let state = state.clone();
    let done = tokio::spawn(async move {
        let result = crate::delivery::replay::send(&plan).await;
        let kept = result.clone();
        state
            .store
            .writer
            .run(move |conn| crate::delivery::replay::record(conn, &plan, &kept))
            .await
            .map(|()| result)
    });
    Ok(done.await.map_err(|_| Error::ShuttingDown)??)
}

/// Most events one request replays (each may wait up to 30 s for its answer).
pub(super) const MAX_TIMELINE_REPLAY: usize = 200;

/// A contact's whole timeline sent again, oldest first, one after the other (each waits
/// for the previous answer): `{"url"?, "resign"?}` → `{"replays": [...]}`.
pub(super) async fn replay_contact(
    State(state): State<Arc<AppState>>,
    Path(email): Path<String>,
    body: Bytes,
) -> ApiResult<Json<ReplayOutcomes>> {
    let request: crate::delivery::replay::ReplayRequest =
        if body.iter().all(u8::is_ascii_whitespace) {
            Default::default()
        } else {
            json_body(&body)?
        };
    if request.body.is_some() {
        return Err(ApiError(Error::Invalid(
            "body: edit one event at a time (POST /api/events/{id}/replay)".into(),
        )));
    }
    let ids = state
        .store
        .read(move |conn| crate::delivery::replay::contact_timeline(conn, &email))
        .await?;
    if ids.len() > MAX_TIMELINE_REPLAY {
        return Err(ApiError(Error::Invalid(format!(
            "this contact has {} events; replay at most {MAX_TIMELINE_REPLAY} at once (hookscope replay takes any number)",
            ids.len()
        ))));
    }
    Ok(Json(replay_in_order(&state, ids, request).await))
}

/// Events sent again one after the other; one that cannot be replayed says why and the
/// rest go on.
pub(super) async fn replay_in_order(
    state: &Arc<AppState>,
    ids: Vec<String>,
    request: crate::delivery::replay::ReplayRequest,
) -> ReplayOutcomes {
    let mut replays = Vec::with_capacity(ids.len());
    for id in ids {
        replays.push(match replay_one(state, id.clone(), request.clone()).await {
            Ok(result) => ReplayOutcome::Sent(result),
            Err(ApiError(error)) => ReplayOutcome::NotSent {
                error: error.to_string(),
                event_id: id,
            },
        });
    }
    ReplayOutcomes { replays }
}

/// A selection of events sent again in the order given: `{"ids": [...], "url"?,
/// "resign"?}` → `{"replays": [...]}`.
pub(super) async fn replay_selection(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> ApiResult<Json<ReplayOutcomes>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Selection {
        ids: Vec<String>,
        url: Option<String>,
        #[serde(default)]
        resign: bool,
    }
    let selection: Selection = json_body(&body)?;
    if selection.ids.is_empty() || selection.ids.len() > MAX_TIMELINE_REPLAY {
        return Err(ApiError(Error::Invalid(format!(
            "ids: give 1 to {MAX_TIMELINE_REPLAY} event ids"
        ))));
    }
    let request = crate::delivery::replay::ReplayRequest {
        url: selection.url,
        resign: selection.resign,
        body: None,
    };
    Ok(Json(replay_in_order(&state, selection.ids, request).await))
}

pub(super) async fn replay_history(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Json<ReplayHistory>> {
    let replays = state
        .store
        .read(move |conn| crate::delivery::replay::history(conn, &id))
        .await?;
    Ok(Json(ReplayHistory { replays }))
}
