//! systeme.io's two families: automation webhooks (a funnel or workflow's "send webhook"
//! action: `{"type", "data", ...}`) and Settings webhooks (signed, the event in
//! `X-Webhook-Event`).

use serde_json::Value;

use super::{Decoded, Delivery, Family, Source, finish, header, scalar_at, text_at};
use crate::capture::worth::Worth;
use crate::timefmt::human_instant;

/// The automation triggers whose `type` is known: its family and label. Types in the seed
/// article and in real captures; `customer.sale.canceled` is how other integrations name
/// the « sale canceled » trigger; the subscription types follow the attested
/// `subscription.payment.failed`. Any other type is labelled from its name, family unknown.
const AUTOMATION_TYPES: &[(&str, Family, &str)] = &[
    ("customer.sale.completed", Family::Sale, "New sale"),
    (
        "customer.sale.canceled",
        Family::SaleCanceled,
        "Sale canceled",
    ),
    ("contact.tag.added", Family::TagAdded, "Tag added"),
    ("contact.tag.removed", Family::TagRemoved, "Tag removed"),
    ("contact.optin.completed", Family::Optin, "Opt-in"),
    (
        "contact.webinar.registered",
        Family::Webinar,
        "Webinar registration",
    ),
    (
        "contact.course.enrolled",
        Family::Course,
        "Course enrolment",
    ),
    (
        "contact.course_bundle.enrolled",
        Family::Course,
        "Bundle enrolment",
    ),
    (
        "contact.course.completed",
        Family::Course,
        "Course completed",
    ),
    (
        "contact.campaign.finished",
        Family::Campaign,
        "Campaign finished",
    ),
    ("contact.page.visited", Family::Page, "Page visited"),
    (
        "contact.email_link.clicked",
        Family::EmailClick,
        "Email link clicked",
    ),
    (
        "subscription.payment.failed",
        Family::Subscription,
        "Subscription payment failed",
    ),
    (
        "subscription.payment.succeeded",
        Family::Subscription,
        "Subscription renewed",
    ),
    (
        "subscription.renewed",
        Family::Subscription,
        "Subscription renewed",
    ),
    (
        "subscription.canceled",
        Family::Subscription,
        "Subscription canceled",
    ),
];

/// Family and label of an automation type: from the table, else from its name (family
/// unknown: never guessed from the words).
pub fn automation_type(event_type: &str) -> (Family, String) {
    AUTOMATION_TYPES
        .iter()
        .find(|(known, _, _)| *known == event_type)
        .map(|(_, family, label)| (*family, (*label).to_string()))
        .unwrap_or_else(|| (Family::Unknown, humanise_type(event_type)))
}

pub(super) fn decode_automation(json: &Value) -> Decoded {
    let event_type = json["type"].as_str().unwrap_or_default().to_string();
    let data = &json["data"];
    // Whom it is about: the contact, else the buyer; `account` is the seller.
    let person = if data["customer"].is_object() {
        &data["customer"]
    } else {
        &data["contact"]
    };
    let contact_email = text_at(person, &["email"]);
    let contact_id = scalar_at(person, &["contact_id"]).or_else(|| {
        // A customer's `id` is the customer's, not the contact's.
        if std::ptr::eq(person, &data["contact"]) {
            scalar_at(person, &["id"])
        } else {
            None
        }
    });
    let contact_name = name_from_fields(&person["fields"]);

    let step = describe_step(&data["funnel_step"]);
    let (family, label) = automation_type(&event_type);
    let detail = match event_type.as_str() {
        "customer.sale.completed" | "customer.sale.canceled" => {
            let plan = &data["offer_price_plan"];
            let offer =
                text_at(plan, &["name"]).or_else(|| text_at(data, &["funnel_step", "name"]));
            join_present(&[Worth::of_automation(data).paid_text(), offer])
        }
        "contact.tag.added" | "contact.tag.removed" => text_at(data, &["tag", "name"]),
        "contact.optin.completed" => step.clone().or(describe_named(&data["page_model"], "blog")),
        "contact.webinar.registered" => {
            let step = &data["webinar"]["funnel_step"];
            let place = text_at(step, &["funnel", "name"]).or_else(|| text_at(step, &["name"]));
            let when = text_at(data, &["scheduled_at"]).map(|at| human_instant(&at).unwrap_or(at));
            match (when, place) {
                (Some(when), Some(place)) => Some(format!("{when} ({place})")),
                (when, place) => when.or(place),
            }
        }
        "contact.course.enrolled" => {
            let access = text_at(data, &["access_type"]).map(|a| a.replace('_', " "));
            let course = text_at(data, &["course", "name"]);
            match (course, access) {
                (Some(c), Some(a)) => Some(format!("{c} ({a})")),
                (c, _) => c,
            }
        }
        "contact.course_bundle.enrolled" => text_at(data, &["course_bundle", "name"]),
        "contact.campaign.finished" => text_at(data, &["campaign", "name"]),
        "contact.page.visited" => step.clone(),
        "contact.email_link.clicked" => text_at(data, &["sent_email", "subject"]),
        _ => first_named_thing(data).or(contact_email.clone()),
    };
    finish(
        Source::SystemeAutomation,
        family,
        Some(event_type.clone()),
        label,
        detail,
        contact_email,
        contact_id,
        contact_name,
        text_at(json, &["created_at"]),
    )
}

pub(super) fn decode_settings(event: &str, delivery: &Delivery) -> Decoded {
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
            let detail = join_present(&[Worth::of_settings(json).paid_text(), offer]);
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
            Family::Unknown,
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

/// The contact's name from `fields`, in any of the shapes systeme.io sends: an object
/// (`{"first_name": ...}`), an empty list (PHP's empty map) or a list of
/// `{"slug", "value"}` entries.
pub(super) fn name_from_fields(fields: &Value) -> Option<String> {
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
pub(super) fn describe_step(step: &Value) -> Option<String> {
    describe_named(step, "funnel")
}

/// `name (parent.name)` for a named object with a named parent.
pub(super) fn describe_named(thing: &Value, parent: &str) -> Option<String> {
    let name = text_at(thing, &["name"])?;
    Some(match text_at(thing, &[parent, "name"]) {
        Some(parent) if parent != name => format!("{name} ({parent})"),
        _ => name,
    })
}

pub(super) fn join_present(parts: &[Option<String>]) -> Option<String> {
    let present: Vec<&str> = parts.iter().flatten().map(String::as_str).collect();
    (!present.is_empty()).then(|| present.join(", "))
}

/// For an event type we don't know: the name or subject of the first object in it that
/// has one (other than the contact), so "Course completed" still says which course.
pub(super) fn first_named_thing(data: &Value) -> Option<String> {
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
