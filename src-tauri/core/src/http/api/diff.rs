//! Two events compared, and which event one is best compared with.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;

use crate::service::store::Store;
use crate::store::events::compare::{self, EventDiff, Previous};

use super::answer::{ApiQuery, ApiResult};

#[derive(Deserialize)]
pub(super) struct Pair {
    a: String,
    b: String,
}

/// `GET /api/diff?a=ID&b=ID`: headers by name, the body by JSON path, by line or by hash.
pub(super) async fn diff_events(
    State(store): State<Arc<Store>>,
    ApiQuery(Pair { a, b }): ApiQuery<Pair>,
) -> ApiResult<Json<EventDiff>> {
    let inflate_limit = store.max_body.bytes();
    Ok(Json(
        store
            .read(move |conn| compare::compare(conn, &a, &b, inflate_limit))
            .await?,
    ))
}

/// `GET /api/events/{id}/previous`: its previous attempt, what it repeats, or the
/// previous event of its type on its endpoint.
pub(super) async fn previous_event(
    State(store): State<Arc<Store>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Previous>> {
    Ok(Json(
        store.read(move |conn| compare::previous(conn, &id)).await?,
    ))
}
