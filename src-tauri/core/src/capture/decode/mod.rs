//! Understanding a delivery: which systeme.io event it is (or that it is none), who it is
//! about, and a one-line summary a person can read. Pure functions over the request; no
//! I/O. Nothing here rejects a delivery: an unexpected shape decodes to less, never fails.

use serde_json::Value;

mod generic;
mod systeme;

use generic::{decode_generic_json, decode_non_json};
pub use systeme::humanise_type;
use systeme::{decode_automation, decode_settings};

/// Where a delivery comes from, as far as its shape tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Funnel/workflow "send webhook" action: `{"type", "data", "account", "created_at"}`.
    SystemeAutomation,
    /// Settings → Webhooks: event name in `X-Webhook-Event`, signed.
    SystemeSettings,
    Json,
    Form,
    Text,
    Binary,
    Empty,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::SystemeAutomation => "systeme_automation",
            Source::SystemeSettings => "systeme_settings",
            Source::Json => "json",
            Source::Form => "form",
            Source::Text => "text",
            Source::Binary => "binary",
            Source::Empty => "empty",
        }
    }
}

/// The badge a delivery wears in the UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ts_rs::TS)]
#[ts(rename_all = "snake_case")]
pub enum Family {
    Sale,
    SaleCanceled,
    TagAdded,
    TagRemoved,
    Optin,
    Webinar,
    Course,
    Campaign,
    Page,
    EmailClick,
    Contact,
    /// A subscription's payments: one failed, renewed, or the subscription ended.
    Subscription,
    Unknown,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Sale => "sale",
            Family::SaleCanceled => "sale_canceled",
            Family::TagAdded => "tag_added",
            Family::TagRemoved => "tag_removed",
            Family::Optin => "optin",
            Family::Webinar => "webinar",
            Family::Course => "course",
            Family::Campaign => "campaign",
            Family::Page => "page",
            Family::EmailClick => "email_click",
            Family::Contact => "contact",
            Family::Subscription => "subscription",
            Family::Unknown => "unknown",
        }
    }
}

/// A delivery as decoding sees it. `body` is content-decoded (gzip undone).
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub method: &'a str,
    pub headers: &'a [(String, String)],
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
    pub json: Option<&'a Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub source: Source,
    pub family: Family,
    pub event_type: Option<String>,
    pub label: String,
    pub summary: String,
    /// As it arrived; group on [`Decoded::contact_key`].
    pub contact_email: Option<String>,
    pub contact_id: Option<String>,
    pub contact_name: Option<String>,
    /// When the sender says the event happened (not when it arrived).
    pub occurred_at: Option<String>,
}

impl Decoded {
    /// The grouping key of the contact: the email, trimmed, lower-cased, in NFC.
    pub fn contact_key(&self) -> Option<String> {
        self.contact_email.as_deref().map(normalise_email)
    }
}

/// The grouping key of an address: trimmed, lower-cased, Unicode NFC (see
/// [`crate::capture::fields::fold`]), so every way of writing it is one contact.
pub fn normalise_email(email: &str) -> String {
    crate::capture::fields::fold(email.trim()).into_owned()
}

pub use crate::capture::fields::{at, header, scalar_at, text_at};

pub fn decode(delivery: &Delivery) -> Decoded {
    if let Some(event) = header(delivery.headers, "x-webhook-event") {
        return decode_settings(event.trim(), delivery);
    }
    match delivery.json {
        Some(json) if is_automation(json) => decode_automation(json),
        Some(json) => decode_generic_json(json),
        None => decode_non_json(delivery),
    }
}

/// systeme.io's automation envelope, whatever the type: a dotted `type` and a `data`
/// object (`account` and `created_at` beside them as its rules send them, not required).
/// Recognised by its shape, never by the words in its type.
fn is_automation(json: &Value) -> bool {
    let Some(map) = json.as_object() else {
        return false;
    };
    let typed = map
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty() && t.len() <= 200 && t.contains('.'));
    typed && map.get("data").is_some_and(Value::is_object)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn finish(
    source: Source,
    family: Family,
    event_type: Option<String>,
    label: String,
    detail: Option<String>,
    contact_email: Option<String>,
    contact_id: Option<String>,
    contact_name: Option<String>,
    occurred_at: Option<String>,
) -> Decoded {
    let summary = match detail.filter(|d| !d.is_empty()) {
        Some(detail) => format!("{label}: {}", truncate(&detail, 200)),
        None => label.clone(),
    };
    Decoded {
        source,
        family,
        event_type,
        label,
        summary,
        contact_email: contact_email.filter(|e| !e.trim().is_empty()),
        contact_id,
        contact_name,
        occurred_at,
    }
}

pub(super) fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}
