//! The funnel view: opt-ins, sales and revenue per funnel and per offer over a period,
//! computed from the stored events' facts. Retries and probable repeats count once; a
//! sale resent with the same order counts once.

use std::collections::{BTreeMap, HashSet};

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::capture::facts::{Fact, Sale, Step, parse_stored};
use crate::error::Result;
use crate::store::events::query::instant;

#[derive(Debug, Clone, Default, Deserialize, ts_rs::TS)]
#[ts(optional_fields)]
pub struct FunnelFilter {
    pub since: Option<String>,
    pub until: Option<String>,
    pub endpoint: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, ts_rs::TS)]
pub struct Money {
    pub currency: String,
    pub amount_cents: i64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, ts_rs::TS)]
pub struct OfferRow {
    pub offer_id: Option<String>,
    pub offer: Option<String>,
    pub sales: i64,
    pub canceled: i64,
    /// Sales in the period, per currency.
    pub revenue: Vec<Money>,
    /// Cancellations in the period, per currency.
    pub canceled_amount: Vec<Money>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, ts_rs::TS)]
pub struct FunnelRow {
    pub funnel_id: Option<String>,
    /// `null` for sales and opt-ins that name no funnel.
    pub funnel: Option<String>,
    /// Contacts who opted in.
    pub optins: i64,
    /// Of those, contacts who then bought in this funnel.
    pub buyers: i64,
    /// `buyers / optins`, null without opt-ins.
    pub conversion: Option<f64>,
    pub sales: i64,
    pub canceled: i64,
    pub revenue: Vec<Money>,
    pub offers: Vec<OfferRow>,
}

#[derive(Debug, Clone, Serialize, PartialEq, ts_rs::TS)]
pub struct FunnelReport {
    pub funnels: Vec<FunnelRow>,
    /// Sales and opt-ins in the period left out because their signature is invalid.
    pub not_counted: i64,
}

#[derive(Default)]
struct FunnelTally {
    funnel_id: Option<String>,
    funnel: Option<String>,
    opted_in: HashSet<String>,
    bought_after_optin: HashSet<String>,
    offers: BTreeMap<String, OfferTally>,
}

#[derive(Default)]
struct OfferTally {
    row: OfferRow,
    revenue: BTreeMap<String, i64>,
    canceled_amount: BTreeMap<String, i64>,
    orders: HashSet<String>,
    canceled_orders: HashSet<String>,
}

fn funnel_key(step: Option<&Step>) -> (String, Option<String>, Option<String>) {
    let id = step.and_then(|s| s.funnel_id.clone());
    let name = step.and_then(|s| s.funnel.clone());
    let key = id
        .clone()
        .or_else(|| name.clone().map(|n| format!("name:{n}")));
    (key.unwrap_or_default(), id, name)
}

fn money(totals: &BTreeMap<String, i64>) -> Vec<Money> {
    totals
        .iter()
        .map(|(currency, amount)| Money {
            currency: currency.clone(),
            amount_cents: *amount,
        })
        .collect()
}

fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

pub fn report(conn: &Connection, filter: &FunnelFilter) -> Result<FunnelReport> {
    let since = present(&filter.since)
        .map(|t| instant(t, "since"))
        .transpose()?;
    let until = present(&filter.until)
        .map(|t| instant(t, "until"))
        .transpose()?;
    let mut stmt = conn.prepare_cached(
        "SELECT facts, contact_key, signature = 'invalid', attempt = 1 AND repeat_of IS NULL
         FROM events
         WHERE facts IS NOT NULL AND received_at >= ?1 AND received_at < ?2
           AND (?3 IS NULL OR endpoint_id = ?3)
         ORDER BY received_at, seq",
    )?;
    let mut rows = stmt.query((
        since.unwrap_or(i64::MIN),
        until.unwrap_or(i64::MAX),
        present(&filter.endpoint),
    ))?;
    let mut funnels: BTreeMap<String, FunnelTally> = BTreeMap::new();
    let mut not_counted = 0;
    while let Some(row) = rows.next()? {
        let (facts, contact, forged, first): (String, Option<String>, bool, bool) =
            (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
        let Some(fact) = parse_stored(&facts).into_iter().find(|f| {
            matches!(
                f,
                Fact::Optin { .. } | Fact::Sale(_) | Fact::SaleCanceled(_)
            )
        }) else {
            continue;
        };
        // Anyone who learns the URL can send a delivery: one that failed verification
        // adds nothing, and is counted apart for the user to look at.
        if forged {
            not_counted += 1;
            continue;
        }
        // Retries and probable repeats count once.
        if !first {
            continue;
        }
        let (step, sale, canceled) = match &fact {
            Fact::Optin { step, .. } => (step.as_ref(), None, false),
            Fact::Sale(sale) => (sale.step.as_ref(), Some(sale), false),
            Fact::SaleCanceled(sale) => (sale.step.as_ref(), Some(sale), true),
            _ => continue,
        };
        let (key, funnel_id, funnel) = funnel_key(step);
        let tally = funnels.entry(key).or_insert_with(|| FunnelTally {
            funnel_id,
            funnel,
            ..FunnelTally::default()
        });
        match sale {
            None => {
                if let Some(contact) = contact {
                    tally.opted_in.insert(contact);
                }
            }
            Some(sale) => {
                if !canceled && let Some(contact) = contact.filter(|c| tally.opted_in.contains(c)) {
                    tally.bought_after_optin.insert(contact);
                }
                count_sale(tally, sale, canceled);
            }
        }
    }
    let mut rows: Vec<FunnelRow> = funnels.into_values().map(finish).collect();
    rows.sort_by(|a, b| b.sales.cmp(&a.sales).then(b.optins.cmp(&a.optins)));
    Ok(FunnelReport {
        funnels: rows,
        not_counted,
    })
}

fn count_sale(tally: &mut FunnelTally, sale: &Sale, canceled: bool) {
    let offer_key = sale
        .offer_id
        .clone()
        .or_else(|| sale.offer.clone().map(|o| format!("name:{o}")))
        .unwrap_or_default();
    let offer = tally.offers.entry(offer_key).or_insert_with(|| OfferTally {
        row: OfferRow {
            offer_id: sale.offer_id.clone(),
            offer: sale.offer.clone(),
            ..OfferRow::default()
        },
        ..OfferTally::default()
    });
    let order = sale.order_id.clone();
    let (orders, count, totals) = if canceled {
        (
            &mut offer.canceled_orders,
            &mut offer.row.canceled,
            &mut offer.canceled_amount,
        )
    } else {
        (&mut offer.orders, &mut offer.row.sales, &mut offer.revenue)
    };
    // The same order seen twice is one sale (or one cancellation).
    if let Some(order) = order
        && !orders.insert(order)
    {
        return;
    }
    *count += 1;
    if let Some(amount) = sale.amount_cents {
        let total = totals
            .entry(sale.currency.clone().unwrap_or_else(|| "?".into()))
            .or_default();
        *total = total.saturating_add(amount);
    }
}

fn finish(tally: FunnelTally) -> FunnelRow {
    let optins = tally.opted_in.len() as i64;
    let buyers = tally.bought_after_optin.len() as i64;
    let mut revenue: BTreeMap<String, i64> = BTreeMap::new();
    let mut offers = Vec::new();
    let (mut sales, mut canceled) = (0, 0);
    for offer in tally.offers.into_values() {
        for (currency, amount) in &offer.revenue {
            let total = revenue.entry(currency.clone()).or_default();
            *total = total.saturating_add(*amount);
        }
        sales += offer.row.sales;
        canceled += offer.row.canceled;
        offers.push(OfferRow {
            revenue: money(&offer.revenue),
            canceled_amount: money(&offer.canceled_amount),
            ..offer.row
        });
    }
    offers.sort_by_key(|o| std::cmp::Reverse(o.sales));
    FunnelRow {
        funnel_id: tally.funnel_id,
        funnel: tally.funnel,
        optins,
        buyers,
        conversion: (optins > 0).then(|| buyers as f64 / optins as f64),
        sales,
        canceled,
        revenue: money(&revenue),
        offers,
    }
}
