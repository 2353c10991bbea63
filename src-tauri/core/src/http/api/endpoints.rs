//! Endpoints: webhook URLs with their secrets, forward targets and chosen answers.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;

use crate::error::Error;
use crate::http::state::AppState;

use crate::store::endpoints::{self};

use super::answer::{ApiError, ApiResult, json_body};
use super::views::{EndpointList, EndpointView};

pub(super) async fn list_endpoints(
    State(state): State<Arc<AppState>>,
) -> ApiResult<Json<EndpointList>> {
    let list = state.store.read(endpoints::list).await?;
    let endpoints = list
        .into_iter()
        .map(|endpoint| EndpointView {
            url: state.public.webhook_url(&endpoint),
            public_url: state.public.public_webhook_url(&endpoint),
            endpoint,
        })
        .collect();
    Ok(Json(EndpointList { endpoints }))
}

#[derive(Deserialize)]
pub(super) struct EndpointBody {
    name: String,
}

pub(super) async fn create_endpoint(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> ApiResult<Response> {
    let body: EndpointBody = json_body(&body)?;
    let endpoint = state
        .store
        .change_endpoints(move |conn| endpoints::create(conn, &body.name))
        .await?;
    let view = EndpointView {
        url: state.public.webhook_url(&endpoint),
        public_url: state.public.public_webhook_url(&endpoint),
        endpoint,
    };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// `PATCH /api/endpoints/{id}`: any of `name`, `secret` (a string sets it, `null` clears).
#[derive(Deserialize)]
pub(super) struct EndpointPatch {
    name: Option<String>,
    /// Absent: unchanged. `null`: cleared.
    #[serde(default, deserialize_with = "present_or_null")]
    secret: Option<Option<String>>,
    /// Absent: unchanged. `null`: forwarding stops.
    #[serde(default, deserialize_with = "present_or_null")]
    forward_to: Option<Option<String>>,
    /// Absent: unchanged. `null`: back to a fast 200.
    #[serde(default, deserialize_with = "present_or_null_response")]
    response: Option<Option<endpoints::CannedResponse>>,
}

pub(super) fn present_or_null_response<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<endpoints::CannedResponse>>, D::Error> {
    Option::<endpoints::CannedResponse>::deserialize(deserializer).map(Some)
}

pub(super) fn present_or_null<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

pub(super) async fn change_endpoint(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<EndpointView>> {
    let patch: EndpointPatch = json_body(&body)?;
    if let Some(Some(target)) = &patch.forward_to {
        state.public.refuse_own_url("forward_to", target)?;
    }
    if patch.name.is_none()
        && patch.secret.is_none()
        && patch.forward_to.is_none()
        && patch.response.is_none()
    {
        return Err(ApiError(Error::Invalid(
            "nothing to change: send \"name\", \"secret\", \"forward_to\" and/or \"response\""
                .into(),
        )));
    }
    // Checked before anything changes, so a bad answer does not leave half a change.
    if let Some(Some(response)) = &patch.response {
        response.check()?;
    }
    let endpoint = state
        .store
        .change_endpoints(move |conn| {
            if let Some(name) = &patch.name {
                endpoints::rename(conn, &id, name)?;
            }
            if let Some(target) = &patch.forward_to {
                endpoints::set_forward_to(conn, &id, target.as_deref())?;
            }
            if let Some(response) = &patch.response {
                endpoints::set_response(conn, &id, response.as_ref())?;
            }
            match &patch.secret {
                Some(secret) => endpoints::set_secret(conn, &id, secret.as_deref()),
                None => endpoints::get(conn, &id),
            }
        })
        .await?;
    Ok(Json(EndpointView {
        url: state.public.webhook_url(&endpoint),
        public_url: state.public.public_webhook_url(&endpoint),
        endpoint,
    }))
}

pub(super) async fn delete_endpoint(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .store
        .change_endpoints(move |conn| endpoints::delete(conn, &id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
