//! The API's answers that are its own (the rest are the store's types): each a Rust type
//! the UI's TypeScript is generated from (`make api-types`). Fields of answers that were
//! JSON objects before they were types are in alphabetical order, as those were written.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::capture::card::Card;
use crate::delivery::replay::ReplayResult;
use crate::store::contacts::Contact;
use crate::store::endpoints::Endpoint;
use crate::store::indexer::IndexProgress;
use crate::store::writer::StoreTrouble;
use crate::systeme::RemoteWebhook;
use crate::tunnel::TunnelState;

/// The install at a glance (`GET /api/status`).
#[derive(Debug, Serialize, TS)]
pub struct Status {
    pub contacts: i64,
    pub default_endpoint: String,
    pub events: i64,
    /// The relay this install follows and how that goes (`state: 'off'` when none).
    pub follow: crate::delivery::follow::FollowView,
    /// How far deliveries are indexed: `behind` of them are not in lists and searches yet.
    pub indexing: IndexProgress,
    /// `http://127.0.0.1:PORT`: where webhook URLs point on this machine.
    pub ingest: String,
    pub listening: bool,
    pub max_body: usize,
    /// What the user must know about this start (a database moved aside, a shared folder).
    pub notices: Vec<String>,
    /// SQLite's own allocations (page caches, statements).
    pub sqlite_memory_bytes: i64,
    /// Deliveries the store refused since the last one it stored; null while all is well.
    pub store: Option<StoreTrouble>,
    pub tunnel: TunnelView,
    pub version: String,
    pub webhook_url: String,
}

/// The public URL through a tunnel (`GET /api/tunnel`, `tunnel` stream events).
#[derive(Debug, Serialize, TS)]
#[ts(rename = "TunnelStatus")]
pub struct TunnelView {
    /// As `hookscope serve --tunnel` takes it: `cloudflared`, `bore:HOST`, `manual:URL`, `off`.
    pub choice: String,
    pub hint: Option<String>,
    /// Plain HTTP: systeme.io's Settings webhooks need HTTPS.
    pub insecure: bool,
    /// ngrok has an authtoken (the token itself never leaves the server).
    pub ngrok_authtoken_set: bool,
    pub previous_url: Option<String>,
    pub previous_webhook_url: Option<String>,
    #[ts(type = "'off' | 'cloudflared' | 'ngrok' | 'bore' | 'manual'")]
    pub provider: &'static str,
    /// Where a tunnel or proxy of your own connects so the senders it reports are checked
    /// (`--proxy`); null without one.
    pub proxy_listener: Option<String>,
    pub public_url: Option<String>,
    pub reason: Option<String>,
    /// Grows with every change: of two answers, the higher one is current.
    pub revision: u64,
    pub state: TunnelState,
    /// The default endpoint's webhook URL through the tunnel, while it is up.
    pub webhook_url: Option<String>,
}

/// What a forward target last answered (`GET /api/events/{id}/forward`).
#[derive(Debug, Serialize, TS)]
pub struct ForwardAnswer {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub body_base64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub body_text: Option<String>,
    pub headers: Option<Vec<(String, String)>>,
    pub status: Option<i64>,
}

/// One event of a replayed selection or timeline: its answer, or why it was not sent.
#[derive(Debug, Serialize, TS)]
#[serde(untagged)]
pub enum ReplayOutcome {
    Sent(ReplayResult),
    NotSent { error: String, event_id: String },
}

#[derive(Debug, Serialize, TS)]
pub struct ReplayOutcomes {
    pub replays: Vec<ReplayOutcome>,
}

/// Every replay of one event (`GET /api/events/{id}/replays`).
#[derive(Debug, Serialize, TS)]
pub struct ReplayHistory {
    pub replays: Vec<ReplayResult>,
}

/// A contact with its card (`GET /api/contacts/{email}`).
#[derive(Debug, Serialize, TS)]
pub struct ContactWithCard {
    pub card: Card,
    pub contact: Contact,
    /// The contact's deliveries that failed verification: shown, not counted in the card.
    pub not_counted: i64,
}

/// A learned event type (`GET /api/shapes`).
#[derive(Debug, Serialize, TS)]
pub struct ShapeSummary {
    pub deliveries: i64,
    /// Deliveries whose shape differed from their type's before them.
    pub drifted: i64,
    pub event_type: String,
}

#[derive(Debug, Serialize, TS)]
pub struct ShapeList {
    pub shapes: Vec<ShapeSummary>,
}

/// One type's shape (`GET /api/shapes/{event_type}`).
#[derive(Debug, Serialize, TS)]
#[ts(rename = "Shape")]
pub struct ShapeView {
    pub deliveries: i64,
    pub event_type: String,
    pub paths: Vec<ShapePath>,
}

#[derive(Debug, Serialize, TS)]
pub struct ShapePath {
    /// In every delivery of the type.
    pub always: bool,
    /// Kind of value → deliveries that had it there.
    pub kinds: std::collections::BTreeMap<String, i64>,
    pub path: String,
    pub seen: i64,
}

/// A bundled sample a test event can be made from (`GET /api/templates`).
#[derive(Debug, Serialize, TS)]
pub struct Template {
    pub event_type: Option<String>,
    pub name: String,
}

#[derive(Debug, Serialize, TS)]
pub struct TemplateList {
    pub templates: Vec<Template>,
}

/// A new delivery made from a sample (`template`) or a captured event (`event`), with the
/// contact's email, a tag, an amount or any JSON path changed (`POST /api/test-events`).
#[derive(Debug, serde::Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct TestEventRequest {
    #[ts(optional)]
    pub template: Option<String>,
    #[ts(optional)]
    pub event: Option<String>,
    #[ts(optional)]
    pub endpoint: Option<String>,
    #[ts(optional)]
    pub email: Option<String>,
    #[ts(optional)]
    pub tag: Option<String>,
    #[ts(optional)]
    pub amount: Option<i64>,
    /// JSON path → new value.
    #[serde(default)]
    #[ts(as = "Option<std::collections::BTreeMap<String, Jsonish>>", optional)]
    pub set: serde_json::Map<String, serde_json::Value>,
}

/// Any JSON value (a field set in a test event).
#[derive(Debug, TS)]
#[ts(type = "unknown")]
pub struct Jsonish;

/// What the webhook listener answered a test event (`POST /api/test-events`).
#[derive(Debug, Serialize, TS)]
pub struct TestEventAnswer {
    /// The stored event, when it was stored.
    pub id: Option<String>,
    pub status: u16,
}

/// The systeme.io account link (`GET /api/systeme`); the key itself is never returned.
#[derive(Debug, Serialize, TS)]
#[ts(rename = "SystemeAccount")]
pub struct SystemeView {
    pub api_key_set: bool,
    /// Every Settings-webhook event systeme.io sends.
    pub events: Vec<String>,
}

/// A Settings webhook of the account, with the endpoint it points at.
#[derive(Debug, Serialize, TS)]
#[ts(rename = "SystemeWebhook")]
pub struct SystemeWebhookView {
    pub active: Option<bool>,
    /// The Hookscope endpoint it points at, if any.
    pub endpoint: Option<String>,
    pub id: String,
    pub name: Option<String>,
    pub subscriptions: Vec<String>,
    pub url: String,
}

#[derive(Debug, Serialize, TS)]
pub struct SystemeWebhookList {
    pub webhooks: Vec<SystemeWebhookView>,
}

/// What registering with systeme.io did (`POST /api/endpoints/{id}/systeme`).
#[derive(Debug, Serialize, TS)]
#[ts(rename = "Registration")]
pub struct RegistrationView {
    #[ts(type = "'created' | 'updated' | 'unchanged'")]
    pub action: &'static str,
    pub previous_url: Option<String>,
    /// A new webhook's secret was put on the endpoint: signatures are checked at once.
    pub secret_stored: bool,
    pub webhook: RemoteWebhook,
}

/// An endpoint with its URLs (`GET /api/endpoints` and the endpoint routes).
#[derive(Debug, Serialize, TS)]
#[ts(rename = "Endpoint")]
pub struct EndpointView {
    #[serde(flatten)]
    pub endpoint: Endpoint,
    pub url: String,
    /// Through the tunnel, while it is up.
    pub public_url: Option<String>,
}

#[derive(Debug, Serialize, TS)]
pub struct EndpointList {
    pub endpoints: Vec<EndpointView>,
}

/// How an API error crosses to the UI (and to `hookscope` commands): branch on `code`.
#[derive(Debug, Serialize, serde::Deserialize, TS)]
pub struct ApiErrorBody {
    pub code: String,
    pub message: String,
}

/// What the live stream (`GET /api/stream`, server-sent events) says. Each is sent as an
/// SSE event named by its `kind`, with `data` as the event's data (`{}` when it has none),
/// so a client may listen by name; the UI decodes them into this one type and switches
/// on `kind`.
#[derive(Debug, Serialize, TS)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum StreamEvent {
    /// Sent first: the stream is live; lists read before it may miss a delivery, so
    /// read them again.
    Ready,
    /// A delivery stored and indexed: its summary, no body.
    Captured(std::sync::Arc<crate::store::events::EventMeta>),
    /// The client fell behind (`missed` events), or an event could not be encoded:
    /// reload every list.
    Resync {
        #[serde(skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        missed: Option<u64>,
    },
    /// The tunnel changed (state, URL): its full view.
    Tunnel(TunnelView),
    /// A forward's result.
    Forwarded(std::sync::Arc<crate::store::forwards::ForwardUpdate>),
    /// The store's trouble, first as it stands, then at each change.
    Store(Option<StoreTrouble>),
    /// How far indexing is behind, a few times a second while it is.
    Indexing(IndexProgress),
    /// Deliveries were forgotten or pruned (here or by `hookscope forget`).
    Erased { generation: i64 },
    /// Where following a relay stands, at each change.
    Follow(crate::delivery::follow::FollowView),
    /// An alert was raised.
    Alert(std::sync::Arc<crate::store::alerts::Alert>),
    /// The public URL was checked (null: there is none), first as it stands, then at
    /// each check.
    Probe(Option<crate::service::probe::ProbeView>),
}

impl StreamEvent {
    /// The SSE event's name: the serialised `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            StreamEvent::Ready => "ready",
            StreamEvent::Captured(_) => "captured",
            StreamEvent::Resync { .. } => "resync",
            StreamEvent::Tunnel(_) => "tunnel",
            StreamEvent::Forwarded(_) => "forwarded",
            StreamEvent::Store(_) => "store",
            StreamEvent::Indexing(_) => "indexing",
            StreamEvent::Erased { .. } => "erased",
            StreamEvent::Follow(_) => "follow",
            StreamEvent::Alert(_) => "alert",
            StreamEvent::Probe(_) => "probe",
        }
    }

    /// The SSE event's data: the serialised `data` (`{}` for an event without).
    pub fn data(&self) -> serde_json::Result<String> {
        match self {
            StreamEvent::Ready => Ok("{}".into()),
            StreamEvent::Captured(meta) => serde_json::to_string(meta),
            StreamEvent::Resync { missed: None } => Ok("{}".into()),
            StreamEvent::Resync {
                missed: Some(missed),
            } => serde_json::to_string(&serde_json::json!({ "missed": missed })),
            StreamEvent::Tunnel(view) => serde_json::to_string(view),
            StreamEvent::Forwarded(update) => serde_json::to_string(update),
            StreamEvent::Store(trouble) => serde_json::to_string(trouble),
            StreamEvent::Indexing(progress) => serde_json::to_string(progress),
            StreamEvent::Erased { generation } => {
                serde_json::to_string(&serde_json::json!({ "generation": generation }))
            }
            StreamEvent::Follow(view) => serde_json::to_string(view),
            StreamEvent::Alert(alert) => serde_json::to_string(alert),
            StreamEvent::Probe(view) => serde_json::to_string(view),
        }
    }
}

#[cfg(test)]
mod stream_event_tests {
    use super::*;

    /// `kind()` and `data()` are what serde writes for the tagged form the UI's type
    /// describes, for every kind.
    #[test]
    fn names_and_data_are_the_tagged_forms() {
        let events = [
            StreamEvent::Ready,
            StreamEvent::Resync { missed: None },
            StreamEvent::Resync { missed: Some(7) },
            StreamEvent::Store(None),
            StreamEvent::Indexing(IndexProgress {
                through: 3,
                behind: 2,
            }),
            StreamEvent::Erased { generation: 4 },
            StreamEvent::Follow(Default::default()),
        ];
        for event in events {
            let tagged = serde_json::to_value(&event).unwrap();
            assert_eq!(tagged["kind"], event.kind(), "{event:?}");
            let data: serde_json::Value = serde_json::from_str(&event.data().unwrap()).unwrap();
            let expected = tagged
                .get("data")
                .cloned()
                .unwrap_or_else(|| serde_json::json!({}));
            assert_eq!(data, expected, "{event:?}");
        }
    }
}

/// `GET /api/alerts`: newest first.
#[derive(Serialize, TS)]
pub struct AlertList {
    pub alerts: Vec<crate::store::alerts::Alert>,
}

/// `POST /api/alerts/acknowledge`: the alerts read.
#[derive(Deserialize, TS)]
pub struct Acknowledge {
    pub ids: Vec<i64>,
}

#[derive(Serialize, TS)]
pub struct Acknowledged {
    pub acknowledged: usize,
}

/// `GET /api/alert-rules`, and what is left after one is deleted.
#[derive(Serialize, TS)]
pub struct AlertRuleList {
    pub rules: Vec<crate::store::alerts::AlertRule>,
}
