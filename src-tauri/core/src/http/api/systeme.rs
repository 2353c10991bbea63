//! The systeme.io account: its API key (never shown), its Settings webhooks, registration.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use bytes::Bytes;
use serde::Deserialize;

use crate::error::Error;
use crate::http::state::AppState;

use crate::store::endpoints::{self};
use crate::store::settings::{self, Setting};
use crate::systeme;

use super::answer::{ApiError, ApiResult, json_body};
use super::views::{RegistrationView, SystemeView, SystemeWebhookList, SystemeWebhookView};

pub(super) async fn systeme_view(state: &AppState) -> ApiResult<SystemeView> {
    let key = state
        .read(|conn| settings::get_setting(conn, Setting::SystemeApiKey))
        .await?;
    Ok(SystemeView {
        api_key_set: key.is_some(),
        events: systeme::EVENTS.iter().map(|e| e.to_string()).collect(),
    })
}

/// Whether an API key is stored (never the key) and the events a webhook can carry.
pub(super) async fn get_systeme(
    State(state): State<Arc<AppState>>,
) -> ApiResult<Json<SystemeView>> {
    Ok(Json(systeme_view(&state).await?))
}

/// Stores (`{"api_key": "..."}`) or forgets (`null`) the systeme.io API key.
pub(super) async fn put_systeme(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> ApiResult<Json<SystemeView>> {
    #[derive(Deserialize)]
    struct Change {
        api_key: Option<String>,
    }
    let change: Change = json_body(&body)?;
    let key = change.api_key.map(|k| k.trim().to_string());
    if key
        .as_deref()
        .is_some_and(|k| k.is_empty() || k.len() > 500)
    {
        return Err(ApiError(Error::Invalid(
            "api_key: paste the key from systeme.io → Settings → Public API keys, or null to forget it".into(),
        )));
    }
    state
        .writer
        .run(move |conn| match key {
            Some(key) => settings::put_setting(conn, Setting::SystemeApiKey, &key),
            None => settings::delete_setting(conn, Setting::SystemeApiKey),
        })
        .await?;
    Ok(Json(systeme_view(&state).await?))
}

/// The account's Settings webhooks, each with the Hookscope endpoint it points at.
pub(super) async fn list_systeme_webhooks(
    State(state): State<Arc<AppState>>,
) -> ApiResult<Json<SystemeWebhookList>> {
    let (key, endpoints) = state
        .read(|conn| {
            Ok((
                settings::get_setting(conn, Setting::SystemeApiKey)?,
                endpoints::list(conn)?,
            ))
        })
        .await?;
    let key = key.ok_or_else(|| Error::Invalid("set your systeme.io API key first".into()))?;
    let client = systeme::Client::new(state.systeme_api.as_deref(), &key)?;
    let webhooks = client
        .list()
        .await?
        .into_iter()
        .map(|w| SystemeWebhookView {
            endpoint: endpoints
                .iter()
                .find(|e| systeme::points_at(&w.url, &e.token))
                .map(|e| e.id.clone()),
            active: w.active,
            id: w.id,
            name: w.name,
            subscriptions: w.subscriptions,
            url: w.url,
        })
        .collect();
    Ok(Json(SystemeWebhookList { webhooks }))
}

/// Points the endpoint's systeme.io Settings webhook at its current public URL:
/// `{"events"?: [...]}` → `{"action": "created"|"updated"|"unchanged", "webhook",
/// "previous_url", "secret_stored"}`.
pub(super) async fn register_with_systeme(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<RegistrationView>> {
    #[derive(Deserialize, Default)]
    struct Choice {
        events: Option<Vec<String>>,
    }
    let choice: Choice = if body.iter().all(u8::is_ascii_whitespace) {
        Choice::default()
    } else {
        json_body(&body)?
    };
    let registration = state.register_with_systeme(id, choice.events).await?;
    Ok(Json(RegistrationView {
        action: registration.action,
        previous_url: registration.previous_url,
        secret_stored: registration.new_secret.is_some(),
        webhook: registration.webhook,
    }))
}
