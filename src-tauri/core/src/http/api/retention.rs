//! Retention: how long deliveries are kept, and when pruning last ran.

use std::sync::Arc;

use crate::http::state::AppState;
use crate::store::retention::{self, PolicyChange, PrunePreview, RetentionPolicy};
use crate::timefmt::now_micros;
use axum::Json;
use axum::extract::State;
use bytes::Bytes;

use super::answer::{ApiResult, json_body};

pub(super) async fn get_retention(
    State(state): State<Arc<AppState>>,
) -> ApiResult<Json<RetentionPolicy>> {
    Ok(Json(state.read(retention::policy).await?))
}

/// `{"days": N | null, "endpoint"?: ID}`: the install's retention (or an endpoint's own;
/// null goes back to the install's); a run starts at once.
pub(super) async fn put_retention(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> ApiResult<Json<RetentionPolicy>> {
    let change: PolicyChange = json_body(&body)?;
    let policy = state
        .writer
        .run(move |conn| {
            retention::set_days(conn, change.endpoint.as_deref(), change.days)?;
            retention::policy(conn)
        })
        .await?;
    state.retention_changed.notify_one();
    Ok(Json(policy))
}

/// `{"days": N | null, "endpoint"?: ID}`: how many deliveries the policy prunes now and
/// how many it would with this change (nothing changes).
pub(super) async fn preview_retention(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> ApiResult<Json<PrunePreview>> {
    let change: PolicyChange = json_body(&body)?;
    Ok(Json(
        state
            .read(move |conn| retention::preview(conn, now_micros(), &change))
            .await?,
    ))
}
