//! Understanding a delivery: which systeme.io event it is (or that it is none), who it is
//! about, and a one-line summary a person can read. Pure functions over the request; no
//! I/O. Nothing here rejects a delivery: an unexpected shape decodes to less, never fails.

use serde_json::{Map, Value};

use crate::timefmt::human_instant;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// The grouping key of the contact: the email, trimmed and lower-cased.
    pub fn contact_key(&self) -> Option<String> {
        self.contact_email.as_deref().map(normalise_email)
    }
}

pub fn normalise_email(email: &str) -> String {
    email.trim().to_lowercase()
}

pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

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

fn is_automation(json: &Value) -> bool {
    let kind = json.get("type").and_then(Value::as_str).unwrap_or("");
    json.get("data").is_some_and(Value::is_object)
        && (kind.starts_with("contact.") || kind.starts_with("customer."))
}

// ---- systeme.io automation webhooks ---------------------------------------------------

fn decode_automation(json: &Value) -> Decoded {
    let event_type = json["type"].as_str().unwrap_or_default().to_string();
    let data = &json["data"];
    let person = if data["customer"].is_object() {
        &data["customer"]
    } else {
        &data["contact"]
    };
    let contact_email = text_at(person, &["email"]);
    let contact_id = scalar_at(person, &["contact_id"]).or_else(|| scalar_at(person, &["id"]));
    let contact_name = name_from_fields(&person["fields"]);

    let step = describe_step(&data["funnel_step"]);
    let (family, label, detail) = match event_type.as_str() {
        "customer.sale.completed" => {
            let plan = &data["offer_price_plan"];
            let offer =
                text_at(plan, &["name"]).or_else(|| text_at(data, &["funnel_step", "name"]));
            let price = money(&plan["direct_charge_amount"], &plan["currency"]);
            (Family::Sale, "New sale", join_present(&[price, offer]))
        }
        "contact.tag.added" => (
            Family::TagAdded,
            "Tag added",
            text_at(data, &["tag", "name"]),
        ),
        "contact.tag.removed" => (
            Family::TagRemoved,
            "Tag removed",
            text_at(data, &["tag", "name"]),
        ),
        "contact.optin.completed" => {
            let page = describe_named(&data["page_model"], "blog");
            (Family::Optin, "Opt-in", step.clone().or(page))
        }
        "contact.webinar.registered" => {
            let step = &data["webinar"]["funnel_step"];
            let place = text_at(step, &["funnel", "name"]).or_else(|| text_at(step, &["name"]));
            let when = text_at(data, &["scheduled_at"]).map(|at| human_instant(&at).unwrap_or(at));
            let detail = match (when, place) {
                (Some(when), Some(place)) => Some(format!("{when} ({place})")),
                (when, place) => when.or(place),
            };
            (Family::Webinar, "Webinar registration", detail)
        }
        "contact.course.enrolled" => {
            let access = text_at(data, &["access_type"]).map(|a| a.replace('_', " "));
            let course = text_at(data, &["course", "name"]);
            let detail = match (course, access) {
                (Some(c), Some(a)) => Some(format!("{c} ({a})")),
                (c, _) => c,
            };
            (Family::Course, "Course enrolment", detail)
        }
        "contact.course_bundle.enrolled" => (
            Family::Course,
            "Bundle enrolment",
            text_at(data, &["course_bundle", "name"]),
        ),
        "contact.campaign.finished" => (
            Family::Campaign,
            "Campaign finished",
            text_at(data, &["campaign", "name"]),
        ),
        "contact.page.visited" => (Family::Page, "Page visited", step.clone()),
        "contact.email_link.clicked" => (
            Family::EmailClick,
            "Email link clicked",
            text_at(data, &["sent_email", "subject"]),
        ),
        other => {
            let label = humanise_type(other);
            return finish(
                Source::SystemeAutomation,
                guess_family(other),
                Some(event_type.clone()),
                label,
                first_named_thing(data).or(contact_email.clone()),
                contact_email,
                contact_id,
                contact_name,
                text_at(json, &["created_at"]),
            );
        }
    };
    finish(
        Source::SystemeAutomation,
        family,
        Some(event_type.clone()),
        label.to_string(),
        detail,
        contact_email,
        contact_id,
        contact_name,
        text_at(json, &["created_at"]),
    )
}

// ---- systeme.io Settings webhooks (signed) --------------------------------------------

fn decode_settings(event: &str, delivery: &Delivery) -> Decoded {
    let empty = Value::Null;
    let json = delivery.json.unwrap_or(&empty);
    let occurred_at = header(delivery.headers, "x-webhook-event-timestamp").map(str::to_string);
    // systeme.io's own documentation nests `contact.contact`; live deliveries don't.
    let contact = match &json["contact"]["contact"] {
        inner @ Value::Object(_) => inner,
        _ => &json["contact"],
    };
    let customer = &json["customer"];
    let person = if customer.is_object() {
        customer
    } else {
        contact
    };
    let contact_email = text_at(person, &["email"]);
    let contact_id = scalar_at(person, &["contactId"]).or_else(|| scalar_at(person, &["id"]));
    let contact_name = name_from_fields(&person["fields"]);
    let tag = text_at(json, &["tag", "name"]);

    let (family, label, detail) = match event {
        "SALE_NEW" | "SALE_CANCELED" => {
            let plan = &json["pricePlan"];
            let offer = text_at(plan, &["name"]).or_else(|| text_at(json, &["funnelStep", "name"]));
            let amount = money(&plan["amount"], &plan["currency"])
                .or_else(|| money(&json["order"]["totalPrice"], &plan["currency"]));
            let detail = join_present(&[amount, offer]);
            if event == "SALE_NEW" {
                (Family::Sale, "New sale".to_string(), detail)
            } else {
                (Family::SaleCanceled, "Sale canceled".to_string(), detail)
            }
        }
        "CONTACT_TAG_ADDED" => (Family::TagAdded, "Tag added".to_string(), tag),
        "CONTACT_TAG_REMOVED" => (Family::TagRemoved, "Tag removed".to_string(), tag),
        "CONTACT_OPT_IN" => {
            let step = describe_step(&json["funnelStep"]);
            (
                Family::Optin,
                "Opt-in".to_string(),
                step.or(contact_email.clone()),
            )
        }
        "CONTACT_CREATED" => (
            Family::Contact,
            "Contact created".to_string(),
            contact_email.clone(),
        ),
        other => (
            guess_family(other),
            humanise_type(other),
            tag.or_else(|| first_named_thing(json)),
        ),
    };
    finish(
        Source::SystemeSettings,
        family,
        Some(event.to_string()),
        label,
        detail,
        contact_email,
        contact_id,
        contact_name,
        occurred_at,
    )
}

// ---- anything else --------------------------------------------------------------------

fn decode_generic_json(json: &Value) -> Decoded {
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
    finish(
        Source::Json,
        guess_family(event_type.as_deref().unwrap_or("")),
        event_type,
        label,
        detail,
        contact_email,
        contact_id,
        contact_name,
        occurred_at,
    )
}

fn decode_non_json(delivery: &Delivery) -> Decoded {
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

// ---- helpers --------------------------------------------------------------------------

#[allow(clippy::too_many_arguments)]
fn finish(
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

pub(crate) fn at<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(value, |v, key| &v[*key])
}

/// A non-empty string at `path`.
pub(crate) fn text_at(value: &Value, path: &[&str]) -> Option<String> {
    at(value, path)
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// A string or number at `path`, as text (ids come as either).
pub(crate) fn scalar_at(value: &Value, path: &[&str]) -> Option<String> {
    match at(value, path) {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// `583` + `"eur"` → `5.83 EUR` (systeme.io amounts are in cents).
fn money(amount: &Value, currency: &Value) -> Option<String> {
    let cents = match amount {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    let currency = currency.as_str().unwrap_or("").to_uppercase();
    let amount = format!("{:.2}", cents / 100.0);
    Some(if currency.is_empty() {
        amount
    } else {
        format!("{amount} {currency}")
    })
}

/// The contact's name from `fields`, in any of the shapes systeme.io sends: an object
/// (`{"first_name": ...}`), an empty list (PHP's empty map) or a list of
/// `{"slug", "value"}` entries.
fn name_from_fields(fields: &Value) -> Option<String> {
    let get = |slug: &str| -> Option<String> {
        match fields {
            Value::Object(map) => map.get(slug).and_then(Value::as_str).map(str::to_string),
            Value::Array(items) => items
                .iter()
                .find(|item| item["slug"].as_str() == Some(slug))
                .and_then(|item| item["value"].as_str())
                .map(str::to_string),
            _ => None,
        }
    };
    let parts: Vec<String> = [
        get("first_name"),
        get("surname").or_else(|| get("last_name")),
    ]
    .into_iter()
    .flatten()
    .map(|p| p.trim().to_string())
    .filter(|p| !p.is_empty())
    .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// `Squeeze page (webhook data structure documentation)` from a funnel step (both families
/// name it `name` with a `funnel.name`).
fn describe_step(step: &Value) -> Option<String> {
    describe_named(step, "funnel")
}

/// `name (parent.name)` for a named object with a named parent.
fn describe_named(thing: &Value, parent: &str) -> Option<String> {
    let name = text_at(thing, &["name"])?;
    Some(match text_at(thing, &[parent, "name"]) {
        Some(parent) if parent != name => format!("{name} ({parent})"),
        _ => name,
    })
}

fn join_present(parts: &[Option<String>]) -> Option<String> {
    let present: Vec<&str> = parts.iter().flatten().map(String::as_str).collect();
    (!present.is_empty()).then(|| present.join(", "))
}

/// For an event type we don't know: the name or subject of the first object in it that
/// has one (other than the contact), so "Course completed" still says which course.
fn first_named_thing(data: &Value) -> Option<String> {
    let map = data.as_object()?;
    map.iter()
        .filter(|(key, _)| !matches!(key.as_str(), "contact" | "customer" | "account"))
        .find_map(|(_, v)| text_at(v, &["name"]).or_else(|| text_at(v, &["subject"])))
}

/// `contact.course.completed` → `Course completed`; `SUBSCRIPTION_PAYMENT_FAILED` →
/// `Subscription payment failed`.
pub fn humanise_type(event_type: &str) -> String {
    let words: Vec<String> = event_type
        .split(['.', '_', '-', ':', '/', ' '])
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let meaningful: Vec<&String> = match words.first().map(String::as_str) {
        Some("contact" | "customer") if words.len() > 1 => words[1..].iter().collect(),
        _ => words.iter().collect(),
    };
    let mut text = meaningful
        .iter()
        .map(|w| w.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    if let Some(first) = text.get(..1) {
        text = first.to_uppercase() + &text[1..];
    }
    if text.is_empty() {
        "Event".to_string()
    } else {
        text
    }
}

/// A badge for an event type we have no table entry for, from the words in it.
fn guess_family(event_type: &str) -> Family {
    let t = event_type.to_ascii_lowercase();
    let has = |w: &str| t.contains(w);
    if has("tag") && (has("remov") || has("delet")) {
        Family::TagRemoved
    } else if has("tag") {
        Family::TagAdded
    } else if has("cancel") || has("refund") {
        Family::SaleCanceled
    } else if has("sale") || has("order") || has("payment") || has("subscription") {
        Family::Sale
    } else if has("optin") || has("opt_in") {
        Family::Optin
    } else if has("webinar") {
        Family::Webinar
    } else if has("course") || has("module") || has("chapter") || has("lesson") {
        Family::Course
    } else if has("campaign") {
        Family::Campaign
    } else if has("page") {
        Family::Page
    } else if has("email") {
        Family::EmailClick
    } else if has("contact") {
        Family::Contact
    } else {
        Family::Unknown
    }
}

fn looks_like_email(text: &str) -> bool {
    let text = text.trim();
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty() && domain.contains('.') && !text.contains(char::is_whitespace)
}

/// The first `email` (any case, or `*_email` / `*Email`) holding an address, breadth first,
/// with the object that holds it. `account` is skipped: in systeme.io it is the account
/// owner, never the contact.
fn find_email(root: &Value) -> Option<(String, &Value)> {
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

fn email_in(map: &Map<String, Value>) -> Option<String> {
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

fn name_in(owner: &Value) -> Option<String> {
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

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}
