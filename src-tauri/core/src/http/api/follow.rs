//! Following a relay from the window: which one, and how it goes.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use bytes::Bytes;
use serde::Deserialize;

use crate::delivery::follow::{FollowTarget, FollowView};
use crate::http::state::AppState;

use super::answer::{ApiResult, json_body};

pub(super) async fn get_follow(State(state): State<Arc<AppState>>) -> Json<FollowView> {
    Json(state.follow.view())
}

/// `{"url", "token"}`: follow this relay from now on (remembered).
pub(super) async fn put_follow(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> ApiResult<Json<FollowView>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Follow {
        url: String,
        token: String,
    }
    let follow: Follow = json_body(&body)?;
    let target = FollowTarget::new(&follow.url, &follow.token)?;
    state.follow_relay(Some(target)).await?;
    Ok(Json(state.follow.view()))
}

/// Stops following; what was pulled stays.
pub(super) async fn stop_following(
    State(state): State<Arc<AppState>>,
) -> ApiResult<Json<FollowView>> {
    state.follow_relay(None).await?;
    Ok(Json(state.follow.view()))
}
