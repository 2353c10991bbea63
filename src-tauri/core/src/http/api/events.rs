//! Events: the list with its filters, one event with its payload, its raw body, and what its forward target answered.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::error::Error;
use crate::exchange::event_json::{Layout, write_event};
use crate::service::store::Store;

use crate::store::events;
use crate::store::events::query::{self, EventFilter};

use super::answer::{ApiQuery, ApiResult};
use super::views::ForwardAnswer;

pub(super) async fn list_events(
    State(store): State<Arc<Store>>,
    ApiQuery(filter): ApiQuery<EventFilter>,
) -> ApiResult<Json<query::EventPage>> {
    Ok(Json(
        store
            .read(move |conn| query::list_events(conn, &filter))
            .await?,
    ))
}

pub(super) async fn get_event(
    State(store): State<Arc<Store>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let inflate_limit = store.max_body.bytes();
    let event = store.read(move |conn| events::get_event(conn, &id)).await?;
    let mut out = Vec::with_capacity(event.body.len() + 1024);
    write_event(
        &mut out,
        &event.meta,
        event.body_kind,
        &event.body,
        Layout::Document,
        inflate_limit,
    )
    .map_err(Error::Io)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], out).into_response())
}

/// The body exactly as it arrived, for the Raw view and "copy as cURL". Served as an
/// attachment of opaque type so no browser renders it.
pub(super) async fn get_raw_body(
    State(store): State<Arc<Store>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let wanted = id.clone();
    let (_, delivery) = store
        .read(move |conn| crate::store::deliveries::get(conn, &wanted))
        .await?
        .ok_or_else(|| Error::NotFound(format!("no event {id}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CONTENT_DISPOSITION, "attachment"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        delivery.body,
    )
        .into_response())
}

/// What the forward target last answered: `{"status", "headers", "body_text"|"body_base64"}`.
pub(super) async fn get_forward_answer(
    State(store): State<Arc<Store>>,
    Path(id): Path<String>,
) -> ApiResult<Json<ForwardAnswer>> {
    let wanted = id.clone();
    let crate::store::forwards::TargetAnswer {
        status,
        headers,
        body,
    } = store
        .read(move |conn| crate::store::forwards::last_answer(conn, &wanted))
        .await?
        .ok_or_else(|| Error::NotFound(format!("event {id} was not forwarded")))?;
    let mut answer = ForwardAnswer {
        body_base64: None,
        body_text: None,
        headers: headers.and_then(|h| serde_json::from_str(&h).ok()),
        status,
    };
    match body.map(String::from_utf8) {
        Some(Ok(text)) => answer.body_text = Some(text),
        Some(Err(bytes)) => {
            answer.body_base64 = Some(base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                bytes.into_bytes(),
            ))
        }
        None => {}
    }
    Ok(Json(answer))
}
