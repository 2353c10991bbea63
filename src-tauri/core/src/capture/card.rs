//! The contact card: a contact's state as its events tell it (current tags, purchases,
//! enrolments, webinars, opt-ins, campaigns, pages, email clicks). It is a fold of the
//! events' [`Fact`]s in the order they happened; the store keeps a copy up to date
//! (the `contact_cards` table), and a card can always be rebuilt from the events alone.

use serde::{Deserialize, Serialize};

use crate::capture::facts::{Fact, Sale, Step};
use crate::timefmt::format_micros;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[ts(rename = "ContactCard")]
pub struct Card {
    /// The contact's tags: its own list where a payload gave it, then added minus
    /// removed, in order.
    pub tags: Vec<String>,
    pub purchases: Vec<Purchase>,
    pub enrolments: Vec<Enrolment>,
    pub webinars: Vec<WebinarSeat>,
    pub optins: Vec<Optin>,
    pub campaigns: Vec<Dated>,
    pub pages: Vec<PageVisits>,
    pub email_clicks: Vec<EmailClicks>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct Purchase {
    #[serde(flatten)]
    pub sale: Sale,
    pub at: String,
    pub canceled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canceled_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct Enrolment {
    /// `course` or `bundle`.
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct WebinarSeat {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<Step>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_at: Option<String>,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct Optin {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<Step>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct Dated {
    pub name: String,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct PageVisits {
    pub step: Step,
    pub visits: i64,
    pub last_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct EmailClicks {
    pub subject: String,
    pub clicks: i64,
    pub last_at: String,
}

/// When the order was made, as the payload says, in the card's format.
fn ordered_at(sale: &Sale) -> Option<String> {
    let at = crate::timefmt::parse_rfc3339_micros(sale.ordered_at.as_deref()?)?;
    Some(format_micros(at))
}

fn same_order(a: &Sale, b: &Sale) -> bool {
    a.order_id.is_some()
        && a.order_id == b.order_id
        && (a.offer_id.is_none() || b.offer_id.is_none() || a.offer_id == b.offer_id)
}

impl Card {
    /// Applies one event's fact, `at` when it happened (unix µs): the payload's own time
    /// where it has one, else when it arrived.
    pub fn apply(&mut self, fact: &Fact, at: i64) {
        let when = format_micros(at);
        match fact {
            // The state at that moment: what came before it no longer counts.
            Fact::Tags { tags } => {
                self.tags.clear();
                for tag in tags {
                    if !self.tags.contains(tag) {
                        self.tags.push(tag.clone());
                    }
                }
            }
            Fact::TagAdded { tag } => {
                if !self.tags.contains(tag) {
                    self.tags.push(tag.clone());
                }
            }
            Fact::TagRemoved { tag } => self.tags.retain(|t| t != tag),
            Fact::Sale(sale) => {
                // The same order twice (a resend) is one purchase.
                if !self.purchases.iter().any(|p| same_order(&p.sale, sale)) {
                    self.purchases.push(Purchase {
                        sale: sale.clone(),
                        at: ordered_at(sale).unwrap_or(when),
                        canceled: false,
                        canceled_at: None,
                    });
                }
            }
            Fact::SaleCanceled(sale) => {
                let open = self
                    .purchases
                    .iter()
                    .position(|p| !p.canceled && same_order(&p.sale, sale));
                let known = self.purchases.iter().any(|p| same_order(&p.sale, sale));
                match open {
                    Some(i) => {
                        self.purchases[i].canceled = true;
                        self.purchases[i].canceled_at = Some(when);
                    }
                    // A cancellation whose sale Hookscope never saw still tells of a purchase.
                    None if !known => self.purchases.push(Purchase {
                        sale: sale.clone(),
                        at: when.clone(),
                        canceled: true,
                        canceled_at: Some(when),
                    }),
                    None => {}
                }
            }
            Fact::Optin { step, page } => self.optins.push(Optin {
                step: step.clone(),
                page: page.clone(),
                at: when,
            }),
            Fact::Course { name, access } => self.enrol("course", name, access.clone(), when),
            Fact::Bundle { name } => self.enrol("bundle", name, None, when),
            Fact::Webinar { step, scheduled_at } => {
                let seat = WebinarSeat {
                    step: step.clone(),
                    scheduled_at: scheduled_at.clone(),
                    at: when,
                };
                if !self
                    .webinars
                    .iter()
                    .any(|w| w.step == seat.step && w.scheduled_at == seat.scheduled_at)
                {
                    self.webinars.push(seat);
                }
            }
            Fact::Campaign { name } => {
                if !self.campaigns.iter().any(|c| &c.name == name) {
                    self.campaigns.push(Dated {
                        name: name.clone(),
                        at: when,
                    });
                }
            }
            Fact::PageVisited { step } => match self.pages.iter_mut().find(|p| &p.step == step) {
                Some(page) => {
                    page.visits += 1;
                    page.last_at = when;
                }
                None => self.pages.push(PageVisits {
                    step: step.clone(),
                    visits: 1,
                    last_at: when,
                }),
            },
            Fact::EmailClicked { subject } => {
                match self.email_clicks.iter_mut().find(|c| &c.subject == subject) {
                    Some(click) => {
                        click.clicks += 1;
                        click.last_at = when;
                    }
                    None => self.email_clicks.push(EmailClicks {
                        subject: subject.clone(),
                        clicks: 1,
                        last_at: when,
                    }),
                }
            }
        }
    }

    fn enrol(&mut self, kind: &str, name: &str, access: Option<String>, at: String) {
        if !self
            .enrolments
            .iter()
            .any(|e| e.kind == kind && e.name == name)
        {
            self.enrolments.push(Enrolment {
                kind: kind.to_string(),
                name: name.to_string(),
                access,
                at,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sale(order: &str, cents: i64) -> Sale {
        Sale {
            order_id: Some(order.into()),
            offer_id: Some("19".into()),
            offer: Some("Blog".into()),
            amount_cents: Some(cents),
            currency: Some("EUR".into()),
            ..Sale::default()
        }
    }

    #[test]
    fn a_payloads_tag_list_is_the_state_then_later_changes_apply() {
        let mut card = Card::default();
        card.apply(&Fact::TagAdded { tag: "old".into() }, 1);
        card.apply(
            &Fact::Tags {
                tags: vec!["lead".into(), "vip".into()],
            },
            2,
        );
        assert_eq!(
            card.tags,
            ["lead", "vip"],
            "the contact's own list wins over what was counted"
        );
        card.apply(&Fact::TagRemoved { tag: "lead".into() }, 3);
        card.apply(
            &Fact::TagAdded {
                tag: "buyer".into(),
            },
            4,
        );
        assert_eq!(card.tags, ["vip", "buyer"]);
    }

    #[test]
    fn a_purchase_is_dated_by_its_order() {
        let mut card = Card::default();
        let mut ordered = sale("9", 100);
        ordered.ordered_at = Some("2026-09-27T20:16:27+00:00".into());
        card.apply(&Fact::Sale(ordered), 1_900_000_000_000_000);
        assert_eq!(card.purchases[0].at, "2026-09-27T20:16:27.000000Z");
    }

    #[test]
    fn tags_are_added_minus_removed_in_order() {
        let mut card = Card::default();
        for (i, fact) in [
            Fact::TagAdded { tag: "lead".into() },
            Fact::TagAdded { tag: "vip".into() },
            Fact::TagAdded { tag: "lead".into() },
            Fact::TagRemoved { tag: "lead".into() },
            Fact::TagAdded {
                tag: "buyer".into(),
            },
            Fact::TagAdded { tag: "lead".into() },
        ]
        .iter()
        .enumerate()
        {
            card.apply(fact, i as i64);
        }
        assert_eq!(card.tags, ["vip", "buyer", "lead"]);
    }

    #[test]
    fn a_cancellation_marks_its_purchase_and_a_resend_is_one_purchase() {
        let mut card = Card::default();
        card.apply(&Fact::Sale(sale("1", 4700)), 1);
        card.apply(&Fact::Sale(sale("1", 4700)), 2);
        card.apply(&Fact::Sale(sale("2", 900)), 3);
        card.apply(&Fact::SaleCanceled(sale("1", 4700)), 4_000_000);
        card.apply(&Fact::SaleCanceled(sale("3", 100)), 5);
        assert_eq!(card.purchases.len(), 3);
        assert!(card.purchases[0].canceled);
        assert_eq!(
            card.purchases[0].canceled_at.as_deref(),
            Some("1970-01-01T00:00:04.000000Z")
        );
        assert!(!card.purchases[1].canceled);
        assert!(
            card.purchases[2].canceled,
            "a cancellation alone still shows the purchase"
        );
    }
}
