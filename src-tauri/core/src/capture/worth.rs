//! What a sale is worth: the one place that decides it, so the summary, the contact's
//! card, the funnel figures and exports agree. The amount is what the buyer paid, after
//! any coupon (`order.totalPrice` when the payload has it); the price plan's amount is the
//! list price, and the difference (or the order's `discountAmount`) the discount. All in
//! cents, as systeme.io sends them.

use serde_json::Value;

use crate::capture::fields::{at, text_at};

/// Larger amounts are no price (a hostile or broken payload): left out of totals.
const MOST_CENTS: f64 = 1e13;

/// A sale's amounts, in cents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Worth {
    /// What was paid: the order's total when given, else the price plan's amount.
    pub paid_cents: Option<i64>,
    /// The price plan's amount, before any discount.
    pub list_cents: Option<i64>,
    /// Taken off the list price (a coupon): the order's `discountAmount`, or list − paid.
    pub discount_cents: Option<i64>,
    /// Upper case (`EUR`).
    pub currency: Option<String>,
}

impl Worth {
    /// A Settings webhook's sale (`SALE_NEW`, `SALE_CANCELED`): `order` and `pricePlan`.
    pub fn of_settings(json: &Value) -> Worth {
        Worth::from_parts(
            at(json, &["order", "totalPrice"]),
            at(json, &["pricePlan", "amount"]),
            at(json, &["order", "discountAmount"]),
            currency(&json["pricePlan"]["currency"])
                .or_else(|| currency(&json["order"]["currency"])),
        )
    }

    /// An automation webhook's sale (`customer.sale.completed`): `order` and
    /// `offer_price_plan` (`direct_charge_amount`).
    pub fn of_automation(data: &Value) -> Worth {
        let plan = &data["offer_price_plan"];
        let list = match at(plan, &["direct_charge_amount"]) {
            Value::Null => at(plan, &["amount"]),
            amount => amount,
        };
        Worth::from_parts(
            at(data, &["order", "total_price"]),
            list,
            at(data, &["order", "discount_amount"]),
            currency(&plan["currency"]).or_else(|| currency(&data["order"]["currency"])),
        )
    }

    fn from_parts(
        total: &Value,
        list: &Value,
        discount: &Value,
        currency: Option<String>,
    ) -> Worth {
        let list_cents = cents(list);
        let paid_cents = cents(total).or(list_cents);
        let discount_cents =
            cents(discount)
                .filter(|d| *d > 0)
                .or_else(|| match (list_cents, paid_cents) {
                    (Some(list), Some(paid)) if list > paid => Some(list - paid),
                    _ => None,
                });
        Worth {
            paid_cents,
            list_cents,
            discount_cents,
            currency,
        }
    }

    /// `27.00 EUR`: what was paid, as the summary says it.
    pub fn paid_text(&self) -> Option<String> {
        let paid = self.paid_cents?;
        let amount = format!("{}.{:02}", paid / 100, (paid % 100).abs());
        let amount = if paid < 0 && paid > -100 {
            format!("-{amount}")
        } else {
            amount
        };
        Some(match &self.currency {
            Some(currency) => format!("{amount} {currency}"),
            None => amount,
        })
    }
}

/// Cents from a number or a numeric string; `None` for anything else or an absurd value.
pub fn cents(amount: &Value) -> Option<i64> {
    let value = match amount {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    (value.is_finite() && value.abs() < MOST_CENTS).then(|| value.round() as i64)
}

fn currency(value: &Value) -> Option<String> {
    text_at(value, &[]).map(|c| c.to_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_discounted_sale_is_worth_what_was_paid() {
        let sale = json!({
            "order": {"totalPrice": 2700, "discountAmount": 2000, "discountType": "fixed"},
            "pricePlan": {"amount": 4700, "currency": "eur"},
        });
        let worth = Worth::of_settings(&sale);
        assert_eq!(
            worth.paid_cents,
            Some(2700),
            "the order's total, after the coupon"
        );
        assert_eq!(worth.list_cents, Some(4700));
        assert_eq!(worth.discount_cents, Some(2000));
        assert_eq!(worth.paid_text().as_deref(), Some("27.00 EUR"));
    }

    #[test]
    fn without_an_order_total_the_plan_is_what_was_paid() {
        let sale = json!({"offer_price_plan": {"direct_charge_amount": 583, "currency": "eur"}});
        let worth = Worth::of_automation(&sale);
        assert_eq!((worth.paid_cents, worth.discount_cents), (Some(583), None));
        assert_eq!(worth.paid_text().as_deref(), Some("5.83 EUR"));
        let discounted = json!({"pricePlan": {"amount": 4700}, "order": {"totalPrice": 4000}});
        assert_eq!(
            Worth::of_settings(&discounted).discount_cents,
            Some(700),
            "no discountAmount: list minus paid"
        );
        assert_eq!(
            Worth::of_settings(&discounted).paid_text().as_deref(),
            Some("40.00")
        );
    }

    #[test]
    fn absurd_or_missing_amounts_are_no_amount() {
        assert_eq!(cents(&json!(1e300)), None);
        assert_eq!(cents(&json!("12.5")), Some(13));
        assert_eq!(cents(&json!(null)), None);
        assert_eq!(Worth::of_settings(&json!({})), Worth::default());
    }
}
