//! Retention: how long deliveries are kept, and when pruning last ran.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use bytes::Bytes;

use crate::service::erasure::Retention;
use crate::store::retention::{PolicyChange, PrunePreview, RetentionPolicy};

use super::answer::{ApiResult, json_body};

pub(super) async fn get_retention(
    State(retention): State<Arc<Retention>>,
) -> ApiResult<Json<RetentionPolicy>> {
    Ok(Json(retention.policy().await?))
}

/// `{"days": N | null, "endpoint"?: ID}`: the install's retention (or an endpoint's own;
/// null goes back to the install's); a run starts at once.
pub(super) async fn put_retention(
    State(retention): State<Arc<Retention>>,
    body: Bytes,
) -> ApiResult<Json<RetentionPolicy>> {
    let change: PolicyChange = json_body(&body)?;
    Ok(Json(retention.change(change).await?))
}

/// `{"days": N | null, "endpoint"?: ID}`: how many deliveries the policy prunes now and
/// how many it would with this change (nothing changes).
pub(super) async fn preview_retention(
    State(retention): State<Arc<Retention>>,
    body: Bytes,
) -> ApiResult<Json<PrunePreview>> {
    let change: PolicyChange = json_body(&body)?;
    Ok(Json(retention.preview(change).await?))
}
