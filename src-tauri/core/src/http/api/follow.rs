//! Following a relay from the window: which one, and how it goes.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use bytes::Bytes;
use serde::Deserialize;

use crate::delivery::follow::{FollowTarget, FollowView};
use crate::service::following::Following;

use super::answer::{ApiResult, json_body};

pub(super) async fn get_follow(State(following): State<Arc<Following>>) -> Json<FollowView> {
    Json(following.view())
}

/// `{"url", "token"}`: follow this relay from now on (remembered).
pub(super) async fn put_follow(
    State(following): State<Arc<Following>>,
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
    following.follow(Some(target)).await?;
    Ok(Json(following.view()))
}

/// Stops following; what was pulled stays.
pub(super) async fn stop_following(
    State(following): State<Arc<Following>>,
) -> ApiResult<Json<FollowView>> {
    following.follow(None).await?;
    Ok(Json(following.view()))
}
