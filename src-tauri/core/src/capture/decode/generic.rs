//! Deliveries that are not systeme.io's: any JSON, forms, text, binary. What they are and
//! who they are about, as far as their shape tells.

use serde_json::{Map, Value};

use super::systeme::{humanise_type, name_from_fields};
use super::{Decoded, Delivery, Family, Source, finish, scalar_at, text_at, truncate};

pub(super) fn decode_generic_json(json: &Value) -> Decoded {
    let event_type = ["type", "event", "event_type", "eventType", "topic"]
        .iter()
        .find_map(|key| text_at(json, &[key]))
        .filter(|t| t.len() <= 200);
    let found = find_email(json);
    let (contact_email, contact_name, contact_id) = match found {
        Some((email, owner)) => (
            Some(email),
            name_in(owner),
            scalar_at(owner, &["id"]).or_else(|| scalar_at(owner, &["contact_id"])),
        ),
        None => (None, None, None),
    };
    let label = event_type
        .as_deref()
        .map(humanise_type)
        .unwrap_or_else(|| "JSON".to_string());
    let shape = match json {
        Value::Object(map) => {
            let keys: Vec<&str> = map.keys().take(5).map(String::as_str).collect();
            let more = if map.len() > 5 { ", …" } else { "" };
            format!("{{{}{more}}}", keys.join(", "))
        }
        Value::Array(items) => format!("array of {}", items.len()),
        other => truncate(&other.to_string(), 80),
    };
    let detail = match (&event_type, &contact_email) {
        (Some(_), Some(email)) => Some(email.clone()),
        _ => Some(shape),
    };
    let occurred_at = ["created_at", "createdAt", "timestamp", "occurred_at"]
        .iter()
        .find_map(|key| text_at(json, &[key]));
    // Whatever its words say, plain JSON belongs to no family Hookscope can vouch for.
    finish(
        Source::Json,
        Family::Unknown,
        event_type,
        label,
        detail,
        contact_email,
        contact_id,
        contact_name,
        occurred_at,
    )
}

pub(super) fn decode_non_json(delivery: &Delivery) -> Decoded {
    let content_type = delivery.content_type.unwrap_or("").to_ascii_lowercase();
    let body = delivery.body;
    let (source, label, detail, email) = if body.is_empty() {
        (
            Source::Empty,
            "Empty",
            format!("{} with no body", delivery.method),
            None,
        )
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
        let email = pairs
            .iter()
            .find(|(k, v)| k.to_ascii_lowercase().contains("email") && looks_like_email(v))
            .map(|(_, v)| v.clone());
        let keys: Vec<&str> = pairs.iter().take(5).map(|(k, _)| k.as_str()).collect();
        let detail = format!("{} fields: {}", pairs.len(), keys.join(", "));
        (Source::Form, "Form", detail, email)
    } else if let Ok(text) = std::str::from_utf8(body) {
        let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
        (Source::Text, "Text", truncate(&line, 80), None)
    } else {
        let kind = if content_type.is_empty() {
            "no content type".to_string()
        } else {
            content_type.clone()
        };
        (
            Source::Binary,
            "Binary",
            format!("{} bytes, {kind}", body.len()),
            None,
        )
    };
    finish(
        source,
        Family::Unknown,
        None,
        label.to_string(),
        Some(detail),
        email,
        None,
        None,
        None,
    )
}

pub(super) fn looks_like_email(text: &str) -> bool {
    let text = text.trim();
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty() && domain.contains('.') && !text.contains(char::is_whitespace)
}

/// The first `email` (any case, or `*_email` / `*Email`) holding an address, breadth first,
/// with the object that holds it. `account` is skipped: in systeme.io it is the account
/// owner, never the contact.
pub(super) fn find_email(root: &Value) -> Option<(String, &Value)> {
    let mut level: Vec<&Value> = vec![root];
    for _ in 0..6 {
        let mut next = Vec::new();
        for value in level {
            match value {
                Value::Object(map) => {
                    if let Some(email) = email_in(map) {
                        return Some((email, value));
                    }
                    next.extend(
                        map.iter()
                            .filter(|(k, _)| k.as_str() != "account")
                            .map(|(_, v)| v)
                            .filter(|v| v.is_object() || v.is_array()),
                    );
                }
                Value::Array(items) => next.extend(items.iter().take(50)),
                _ => {}
            }
        }
        if next.is_empty() {
            break;
        }
        level = next;
    }
    None
}

pub(super) fn email_in(map: &Map<String, Value>) -> Option<String> {
    let exact = map
        .iter()
        .find(|(k, v)| k.eq_ignore_ascii_case("email") && v.as_str().is_some_and(looks_like_email));
    let loose = || {
        map.iter().find(|(k, v)| {
            let k = k.to_ascii_lowercase();
            (k.ends_with("_email") || k.ends_with("email"))
                && !k.contains("referred")
                && v.as_str().is_some_and(looks_like_email)
        })
    };
    exact
        .or_else(loose)
        .and_then(|(_, v)| v.as_str())
        .map(|s| s.trim().to_string())
}

pub(super) fn name_in(owner: &Value) -> Option<String> {
    if let Some(name) = text_at(owner, &["name"]) {
        return Some(name);
    }
    let parts: Vec<String> = [
        text_at(owner, &["first_name"]).or_else(|| text_at(owner, &["firstName"])),
        text_at(owner, &["last_name"]).or_else(|| text_at(owner, &["lastName"])),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !parts.is_empty() {
        return Some(parts.join(" "));
    }
    name_from_fields(&owner["fields"])
}
