//! Synthetic deliveries: a new delivery of any systeme.io type, made from a bundled sample
//! or a captured event, with fields overridden (a contact's email, a tag, an amount, or any
//! JSON path), fresh message and attempt ids, and signed when a secret is known, so a
//! funnel can be rehearsed without systeme.io.

use serde_json::Value;

use crate::capture::signature::{SIGNATURE_HEADER, sign};
use crate::error::{Error, Result};

/// Headers in order, repeats kept.
pub type Headers = Vec<(String, String)>;

/// A sample delivery shipped with Hookscope (the `fixtures/` of the source tree).
pub struct Template {
    pub name: &'static str,
    pub headers: &'static str,
    pub body: &'static str,
}

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$(Template {
            name: $name,
            headers: include_str!(concat!("../../../../fixtures/", $name, ".headers")),
            body: include_str!(concat!("../../../../fixtures/", $name, ".json")),
        }),*]
    };
}

pub const TEMPLATES: &[Template] = templates![
    "systeme-automation/campaign-finished",
    "systeme-automation/course-bundle-enrolled",
    "systeme-automation/course-completed-unknown-type",
    "systeme-automation/course-enrolled",
    "systeme-automation/email-link-clicked",
    "systeme-automation/optin-blog-page",
    "systeme-automation/optin-funnel-step",
    "systeme-automation/page-visited",
    "systeme-automation/sale-completed",
    "systeme-automation/tag-added",
    "systeme-automation/tag-removed",
    "systeme-automation/webinar-registered",
    "systeme-settings/contact-created",
    "systeme-settings/contact-opt-in",
    "systeme-settings/contact-tag-added",
    "systeme-settings/contact-tag-removed-nested",
    "systeme-settings/sale-canceled",
    "systeme-settings/sale-new",
];

impl Template {
    pub fn find(name: &str) -> Option<&'static Template> {
        TEMPLATES.iter().find(|t| t.name == name)
    }

    pub fn headers(&self) -> Vec<(String, String)> {
        crate::capture::headers_file::parse(self.headers)
    }
}

/// What to change: JSON paths (`data.contact.email`, `orderItem.resources.0.course.name`)
/// and the usual ones by name, found wherever this payload keeps them.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    pub email: Option<String>,
    pub tag: Option<String>,
    /// In cents, as systeme.io sends amounts.
    pub amount: Option<i64>,
    #[serde(default)]
    pub set: Vec<(String, Value)>,
}

impl Overrides {
    pub fn is_empty(&self) -> bool {
        self.email.is_none() && self.tag.is_none() && self.amount.is_none() && self.set.is_empty()
    }
}

/// `path=value`: the value as JSON when it is JSON (`42`, `true`, `{"a":1}`), else text.
pub fn parse_assignment(text: &str) -> Result<(String, Value)> {
    let (path, value) = text
        .split_once('=')
        .filter(|(p, _)| !p.trim().is_empty())
        .ok_or_else(|| Error::Invalid(format!("{text:?}: expected path=value")))?;
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
    Ok((path.trim().to_string(), value))
}

/// Sets `path` (dots between keys, numbers index arrays) to `value`, creating objects on
/// the way.
pub fn set_path(root: &mut Value, path: &str, value: Value) -> Result<()> {
    const MAX_DEPTH: usize = 32;
    let mut at = root;
    let keys: Vec<&str> = path.split('.').collect();
    if keys.len() > MAX_DEPTH || keys.iter().any(|k| k.is_empty()) {
        return Err(Error::Invalid(format!(
            "{path}: a path is up to {MAX_DEPTH} names joined by dots"
        )));
    }
    for (i, key) in keys.iter().enumerate() {
        let last = i == keys.len() - 1;
        at = match at {
            Value::Array(items) => {
                let index: usize = key.parse().map_err(|_| {
                    Error::Invalid(format!("{path}: {key:?} indexes a list: use a number"))
                })?;
                items.get_mut(index).ok_or_else(|| {
                    Error::Invalid(format!("{path}: the list has no item {index}"))
                })?
            }
            Value::Object(map) => map.entry(key.to_string()).or_insert(Value::Null),
            // A missing part is made; a value in the way is not overwritten.
            other @ Value::Null => {
                *other = Value::Object(Default::default());
                other
                    .as_object_mut()
                    .expect("made an object above")
                    .entry(key.to_string())
                    .or_insert(Value::Null)
            }
            _ => {
                return Err(Error::Invalid(format!(
                    "{path}: {key:?} is inside a value that is not an object"
                )));
            }
        };
        if last {
            *at = value;
            return Ok(());
        }
    }
    Err(Error::Invalid("an empty path".into()))
}

fn exists(root: &Value, path: &str) -> bool {
    path.split('.')
        .try_fold(root, |at, key| at.get(key))
        .is_some_and(|v| !v.is_null())
}

/// Where this payload keeps the contact's email, the tag, the amount.
fn named_paths(root: &Value, what: &str) -> Vec<&'static str> {
    let candidates: &[&str] = match what {
        "email" => &[
            "data.contact.email",
            "data.customer.email",
            "contact.contact.email",
            "contact.email",
            "customer.email",
        ],
        "tag" => &["data.tag.name", "tag.name"],
        _ => &[
            "data.offer_price_plan.direct_charge_amount",
            "pricePlan.amount",
            "order.totalPrice",
        ],
    };
    candidates
        .iter()
        .copied()
        .filter(|p| exists(root, p))
        .collect()
}

/// A new delivery from `headers` and `body` with `overrides` applied. The body is written
/// anew (compact JSON) only when something changed; message and attempt ids are fresh,
/// so it is a new message rather than a retry; with `secret` it is signed.
pub fn build(
    mut headers: Headers,
    body: &[u8],
    overrides: &Overrides,
    secret: Option<&str>,
) -> Result<(Headers, Vec<u8>)> {
    let body = if overrides.is_empty() {
        body.to_vec()
    } else {
        let mut json: Value = serde_json::from_slice(body)
            .map_err(|e| Error::Invalid(format!("only JSON bodies can be changed: {e}")))?;
        for (what, value) in [
            ("email", overrides.email.clone().map(Value::String)),
            ("tag", overrides.tag.clone().map(Value::String)),
            ("amount", overrides.amount.map(Value::from)),
        ] {
            let Some(value) = value else { continue };
            let paths = named_paths(&json, what);
            if paths.is_empty() {
                return Err(Error::Invalid(format!(
                    "this delivery has no {what} to change: use a path=value instead"
                )));
            }
            for path in paths {
                set_path(&mut json, path, value.clone())?;
            }
        }
        for (path, value) in &overrides.set {
            set_path(&mut json, path, value.clone())?;
        }
        serde_json::to_vec(&json).expect("JSON serialises")
    };
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    for (name, value) in headers.iter_mut() {
        match name.to_ascii_lowercase().as_str() {
            "x-webhook-message-id" | "x-webhook-delivery-attempt-id" => {
                *value = uuid::Uuid::now_v7().to_string()
            }
            "x-webhook-event-timestamp" | "x-webhook-delivery-attempt-timestamp" => {
                *value = now.clone()
            }
            _ => {}
        }
    }
    let signed = headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case(SIGNATURE_HEADER));
    if let (true, Some(secret)) = (signed, secret) {
        let signature = sign(&body, secret);
        for (name, value) in headers.iter_mut() {
            if name.eq_ignore_ascii_case(SIGNATURE_HEADER) {
                *value = signature.clone();
            }
        }
    }
    Ok((headers, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn named_fields_are_found_in_both_families() {
        let sale = Template::find("systeme-automation/sale-completed").unwrap();
        let overrides = Overrides {
            email: Some("new@example.com".into()),
            amount: Some(9900),
            set: vec![parse_assignment("data.coupon={\"code\":\"X\"}").unwrap()],
            ..Overrides::default()
        };
        let (_, body) = build(sale.headers(), sale.body.as_bytes(), &overrides, None).unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["data"]["customer"]["email"], "new@example.com");
        assert_eq!(
            body["data"]["offer_price_plan"]["direct_charge_amount"],
            9900
        );
        assert_eq!(body["data"]["coupon"]["code"], "X");
        let original: Value = serde_json::from_str(sale.body).unwrap();
        assert_eq!(body["account"], original["account"], "not the account's");

        let nested = Template::find("systeme-settings/contact-tag-removed-nested").unwrap();
        let overrides = Overrides {
            email: Some("n@example.com".into()),
            tag: Some("VIP".into()),
            ..Overrides::default()
        };
        let (headers, body) = build(
            nested.headers(),
            nested.body.as_bytes(),
            &overrides,
            Some("s3cret"),
        )
        .unwrap();
        let json: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["contact"]["contact"]["email"], "n@example.com");
        assert_eq!(json["tag"]["name"], "VIP");
        let signature = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(SIGNATURE_HEADER))
            .unwrap();
        assert_eq!(signature.1, sign(&body, "s3cret"));
        let original = nested.headers();
        let id = |h: &[(String, String)]| {
            h.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("x-webhook-message-id"))
                .unwrap()
                .1
                .clone()
        };
        assert_ne!(id(&headers), id(&original), "a new message, not a retry");
    }

    #[test]
    fn bad_overrides_say_why() {
        let tag = Template::find("systeme-automation/tag-added").unwrap();
        let amount = Overrides {
            amount: Some(1),
            ..Overrides::default()
        };
        assert!(build(tag.headers(), tag.body.as_bytes(), &amount, None).is_err());
        assert!(parse_assignment("novalue").is_err());
        let mut list = json!({"a": [1]});
        assert!(set_path(&mut list, "a.5", json!(2)).is_err());
        set_path(&mut list, "b.c", json!("text")).unwrap();
        assert_eq!(list["b"]["c"], "text");
        assert!(
            set_path(&mut list, "b.c.d", json!(1)).is_err(),
            "not through a string"
        );
        assert!(set_path(&mut list, "b..c", json!(1)).is_err());
        assert!(set_path(&mut list, &"a.".repeat(40), json!(1)).is_err());
        assert!(build(vec![], b"not json", &amount, None).is_err());
        // Nothing to change: the exact bytes.
        let (_, same) = build(
            tag.headers(),
            tag.body.as_bytes(),
            &Overrides::default(),
            None,
        )
        .unwrap();
        assert_eq!(same, tag.body.as_bytes());
    }
}
