//! What one systeme.io event says about its contact and its funnel, small enough to store
//! beside the event: the material contact cards and the funnel view are computed from.
//! Pure functions over the decoded delivery; an unexpected shape yields no fact.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::capture::decode::{Decoded, Source, scalar_at, text_at};
use crate::capture::worth::Worth;

/// A funnel step as the payload names it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct Step {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub funnel_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub funnel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
}

impl Step {
    fn from(value: &Value) -> Option<Step> {
        let step = Step {
            funnel_id: scalar_at(value, &["funnel", "id"]),
            funnel: text_at(value, &["funnel", "name"]),
            step_id: scalar_at(value, &["id"]),
            step: text_at(value, &["name"]),
        };
        (step != Step::default()).then_some(step)
    }
}

/// A sale or its cancellation. Amounts are in cents, as systeme.io sends them; what they
/// mean is [`Worth`]'s to say.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct Sale {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer: Option<String>,
    /// What was paid, after any discount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_cents: Option<i64>,
    /// The price plan's amount, before any discount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_cents: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount_cents: Option<i64>,
    /// When the order was made, as the payload says (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordered_at: Option<String>,
    /// Upper case (`EUR`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fact {
    /// The contact's whole tag list at that moment, as the payload gives it.
    Tags {
        tags: Vec<String>,
    },
    TagAdded {
        tag: String,
    },
    TagRemoved {
        tag: String,
    },
    Sale(Sale),
    SaleCanceled(Sale),
    Optin {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<Step>,
        /// A blog page opt-in names its page instead of a funnel step.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        page: Option<String>,
    },
    Course {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        access: Option<String>,
    },
    Bundle {
        name: String,
    },
    Webinar {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<Step>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scheduled_at: Option<String>,
    },
    Campaign {
        name: String,
    },
    PageVisited {
        step: Step,
    },
    EmailClicked {
        subject: String,
    },
}

/// The facts a delivery carries, if it is a systeme.io event Hookscope understands: what
/// happened, preceded by the contact's tag list when the payload has it.
pub fn of(decoded: &Decoded, json: Option<&Value>) -> Vec<Fact> {
    let Some(json) = json else {
        return Vec::new();
    };
    let Some(event_type) = decoded.event_type.as_deref() else {
        return Vec::new();
    };
    let (contact, happened) = match decoded.source {
        Source::SystemeAutomation => (
            &json["data"]["contact"],
            automation(event_type, &json["data"]),
        ),
        Source::SystemeSettings => {
            // systeme.io's own documentation nests `contact.contact`; live deliveries don't.
            let contact = match &json["contact"]["contact"] {
                inner @ Value::Object(_) => inner,
                _ => &json["contact"],
            };
            (contact, settings(event_type, json))
        }
        _ => return Vec::new(),
    };
    let mut facts: Vec<Fact> = tag_list(contact)
        .map(|tags| Fact::Tags { tags })
        .into_iter()
        .collect();
    facts.extend(happened);
    facts
}

/// The contact's tags at that moment: `tags: [{id, name}]` (or plain names).
fn tag_list(contact: &Value) -> Option<Vec<String>> {
    let items = contact.get("tags")?.as_array()?;
    Some(
        items
            .iter()
            .filter_map(|tag| text_at(tag, &["name"]).or_else(|| text_at(tag, &[])))
            .collect(),
    )
}

fn sale(
    worth: Worth,
    order_id: Option<String>,
    plan: &Value,
    offer: Option<String>,
    step: Option<Step>,
    ordered_at: Option<String>,
) -> Sale {
    Sale {
        order_id,
        offer_id: scalar_at(plan, &["id"]),
        offer,
        amount_cents: worth.paid_cents,
        list_cents: worth.list_cents,
        discount_cents: worth.discount_cents,
        ordered_at,
        currency: worth.currency,
        step,
    }
}

fn automation(event_type: &str, data: &Value) -> Option<Fact> {
    let tag = || text_at(data, &["tag", "name"]);
    Some(match event_type {
        "customer.sale.completed" | "customer.sale.canceled" => {
            let plan = &data["offer_price_plan"];
            let sale = sale(
                Worth::of_automation(data),
                scalar_at(data, &["order", "id"]),
                plan,
                text_at(plan, &["name"]).or_else(|| text_at(data, &["funnel_step", "name"])),
                Step::from(&data["funnel_step"]),
                text_at(data, &["order", "created_at"]),
            );
            if event_type == "customer.sale.completed" {
                Fact::Sale(sale)
            } else {
                Fact::SaleCanceled(sale)
            }
        }
        "contact.tag.added" => Fact::TagAdded { tag: tag()? },
        "contact.tag.removed" => Fact::TagRemoved { tag: tag()? },
        "contact.optin.completed" => Fact::Optin {
            step: Step::from(&data["funnel_step"]),
            page: text_at(data, &["page_model", "name"]),
        },
        "contact.webinar.registered" => Fact::Webinar {
            step: Step::from(&data["webinar"]["funnel_step"]),
            scheduled_at: text_at(data, &["scheduled_at"]),
        },
        "contact.course.enrolled" => Fact::Course {
            name: text_at(data, &["course", "name"])?,
            access: text_at(data, &["access_type"]),
        },
        "contact.course_bundle.enrolled" => Fact::Bundle {
            name: text_at(data, &["course_bundle", "name"])?,
        },
        "contact.campaign.finished" => Fact::Campaign {
            name: text_at(data, &["campaign", "name"])?,
        },
        "contact.page.visited" => Fact::PageVisited {
            step: Step::from(&data["funnel_step"])?,
        },
        "contact.email_link.clicked" => Fact::EmailClicked {
            subject: text_at(data, &["sent_email", "subject"])?,
        },
        _ => return None,
    })
}

fn settings(event: &str, json: &Value) -> Option<Fact> {
    let tag = || text_at(json, &["tag", "name"]);
    Some(match event {
        "SALE_NEW" | "SALE_CANCELED" => {
            let plan = &json["pricePlan"];
            let sale = sale(
                Worth::of_settings(json),
                scalar_at(json, &["order", "id"]),
                plan,
                text_at(plan, &["name"]).or_else(|| text_at(json, &["funnelStep", "name"])),
                Step::from(&json["funnelStep"]),
                text_at(json, &["order", "createdAt"]),
            );
            if event == "SALE_NEW" {
                Fact::Sale(sale)
            } else {
                Fact::SaleCanceled(sale)
            }
        }
        "CONTACT_TAG_ADDED" => Fact::TagAdded { tag: tag()? },
        "CONTACT_TAG_REMOVED" => Fact::TagRemoved { tag: tag()? },
        "CONTACT_OPT_IN" => Fact::Optin {
            step: Step::from(&json["funnelStep"]),
            page: None,
        },
        _ => return None,
    })
}

/// Facts as the events table stores them: a list (one fact alone, as an earlier
/// Hookscope stored it, is read as a list of one).
pub fn parse_stored(text: &str) -> Vec<Fact> {
    serde_json::from_str::<Vec<Fact>>(text)
        .or_else(|_| serde_json::from_str::<Fact>(text).map(|fact| vec![fact]))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::decode::{Delivery, decode};

    fn fact(headers: &[(&str, &str)], body: &str) -> Option<Fact> {
        facts(headers, body)
            .into_iter()
            .rfind(|f| !matches!(f, Fact::Tags { .. }))
    }

    fn facts(headers: &[(&str, &str)], body: &str) -> Vec<Fact> {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        let json: Value = serde_json::from_str(body).unwrap();
        let decoded = decode(&Delivery {
            method: "POST",
            headers: &headers,
            content_type: Some("application/json"),
            body: body.as_bytes(),
            json: Some(&json),
        });
        of(&decoded, Some(&json))
    }

    #[test]
    fn automation_sale_carries_offer_money_and_funnel() {
        let body = include_str!("../../../../fixtures/systeme-automation/sale-completed.json");
        let Some(Fact::Sale(sale)) = fact(&[], body) else {
            panic!("a sale")
        };
        assert_eq!(sale.order_id.as_deref(), Some("612661"));
        assert_eq!(sale.offer_id.as_deref(), Some("19"));
        assert_eq!(sale.amount_cents, Some(583));
        assert_eq!(sale.currency.as_deref(), Some("EUR"));
        let step = sale.step.unwrap();
        assert_eq!(step.funnel_id.as_deref(), Some("118"));
        assert_eq!(
            step.funnel.as_deref(),
            Some("Comment créer un blog qui rapporte")
        );
    }

    #[test]
    fn settings_cancellation_and_nested_tag_removal() {
        let body = include_str!("../../../../fixtures/systeme-settings/sale-canceled.json");
        let Some(Fact::SaleCanceled(sale)) = fact(&[("X-Webhook-Event", "SALE_CANCELED")], body)
        else {
            panic!("a cancellation")
        };
        assert_eq!(sale.order_id.as_deref(), Some("7771001"));
        assert_eq!(sale.amount_cents, Some(4700));
        let body =
            include_str!("../../../../fixtures/systeme-settings/contact-tag-removed-nested.json");
        assert!(matches!(
            fact(&[("X-Webhook-Event", "CONTACT_TAG_REMOVED")], body),
            Some(Fact::TagRemoved { .. })
        ));
    }

    #[test]
    fn facts_survive_a_round_trip_through_storage() {
        let body = include_str!("../../../../fixtures/systeme-automation/optin-funnel-step.json");
        let fact = fact(&[], body).unwrap();
        let stored = serde_json::to_string(&fact).unwrap();
        assert!(stored.starts_with(r#"{"kind":"optin""#), "{stored}");
        assert_eq!(serde_json::from_str::<Fact>(&stored).unwrap(), fact);
    }

    #[test]
    fn unknown_and_generic_events_carry_no_fact() {
        assert_eq!(fact(&[], r#"{"type":"order.paid","email":"a@b.c"}"#), None);
        assert_eq!(
            fact(
                &[],
                r#"{"type":"contact.course.completed","data":{"contact":{}}}"#
            ),
            None
        );
        // A tag event without a tag name says nothing about tags.
        assert_eq!(
            fact(&[], r#"{"type":"contact.tag.added","data":{"contact":{}}}"#),
            None
        );
        // An absurd amount is left out, not summed.
        let Some(Fact::Sale(sale)) = fact(
            &[],
            r#"{"type":"customer.sale.completed","data":{"offer_price_plan":{"direct_charge_amount":1e300}}}"#,
        ) else {
            panic!("still a sale")
        };
        assert_eq!(sale.amount_cents, None);
    }
}
