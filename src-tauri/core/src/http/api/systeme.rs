//! The systeme.io account: its API key (never shown), its Settings webhooks, registration.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use bytes::Bytes;
use serde::Deserialize;

use crate::service::systeme::SystemeLink;
use crate::systeme;

use super::answer::{ApiResult, json_body};
use super::views::{RegistrationView, SystemeView, SystemeWebhookList, SystemeWebhookView};

pub(super) async fn systeme_view(systeme: &SystemeLink) -> ApiResult<SystemeView> {
    Ok(SystemeView {
        api_key_set: systeme.has_key().await?,
        events: systeme::EVENTS.iter().map(|e| e.to_string()).collect(),
    })
}

/// Whether an API key is stored (never the key) and the events a webhook can carry.
pub(super) async fn get_systeme(
    State(systeme): State<Arc<SystemeLink>>,
) -> ApiResult<Json<SystemeView>> {
    Ok(Json(systeme_view(&systeme).await?))
}

/// Stores (`{"api_key": "..."}`) or forgets (`null`) the systeme.io API key.
pub(super) async fn put_systeme(
    State(systeme): State<Arc<SystemeLink>>,
    State(health): State<Arc<crate::service::health::Health>>,
    body: Bytes,
) -> ApiResult<Json<SystemeView>> {
    #[derive(Deserialize)]
    struct Change {
        api_key: Option<String>,
    }
    let change: Change = json_body(&body)?;
    systeme.set_key(change.api_key).await?;
    health.systeme_changed().await;
    Ok(Json(systeme_view(&systeme).await?))
}

/// The account's Settings webhooks, each with the Hookscope endpoint it points at.
pub(super) async fn list_systeme_webhooks(
    State(systeme): State<Arc<SystemeLink>>,
) -> ApiResult<Json<SystemeWebhookList>> {
    let webhooks = systeme
        .webhooks()
        .await?
        .into_iter()
        .map(|(w, endpoint)| SystemeWebhookView {
            endpoint: endpoint.map(|e| e.id),
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
    State(systeme): State<Arc<SystemeLink>>,
    State(health): State<Arc<crate::service::health::Health>>,
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
    let registration = systeme.register(id, choice.events).await;
    // What the health view compares has changed (or may have, on a failure halfway).
    health.systeme_changed().await;
    let registration = registration?;
    Ok(Json(RegistrationView {
        action: registration.action,
        previous_url: registration.previous_url,
        secret_stored: registration.new_secret.is_some(),
        webhook: registration.webhook,
    }))
}
