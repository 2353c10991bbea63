//! systeme.io's public API, for the one job Hookscope needs it for: keeping the account's
//! Settings webhook pointed at this machine's current public URL. A quick tunnel gets a
//! new address at every start; instead of pasting it into systeme.io again, Hookscope
//! finds the webhook that points at one of its endpoints (on any host: the path
//! `/h/TOKEN` is the endpoint's) and updates its URL, or creates one with a fresh secret.
//!
//! API: `https://api.systeme.io/api/webhooks`, header `X-API-Key`, JSON bodies; PATCH takes
//! `application/merge-patch+json`; a URL already registered answers 422.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{Error, Result};

pub const DEFAULT_BASE: &str = "https://api.systeme.io";
/// Where the API key is kept (this machine only; never shown again).
pub const API_KEY_SETTING: &str = "systeme.api_key";
/// Every Settings-webhook event systeme.io sends.
pub const EVENTS: [&str; 6] = [
    "CONTACT_CREATED",
    "CONTACT_TAG_ADDED",
    "CONTACT_TAG_REMOVED",
    "CONTACT_OPT_IN",
    "SALE_NEW",
    "SALE_CANCELED",
];
const PAGE: usize = 100;
const TIMEOUT: Duration = Duration::from_secs(20);

/// A Settings webhook as the API lists it (its secret is never read back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteWebhook {
    #[serde(deserialize_with = "id_as_text")]
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub url: String,
    #[serde(default)]
    pub subscriptions: Vec<String>,
    #[serde(default)]
    pub active: Option<bool>,
}

fn id_as_text<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!("unexpected id {other}"))),
    }
}

/// What registering did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Registration {
    /// `created`, `updated` or `unchanged`.
    pub action: &'static str,
    pub webhook: RemoteWebhook,
    /// The URL the webhook pointed at before an update.
    pub previous_url: Option<String>,
    /// The secret of a webhook Hookscope created, to store on the endpoint.
    #[serde(skip)]
    pub new_secret: Option<String>,
}

pub struct Client {
    base: String,
    key: String,
    http: reqwest::Client,
}

impl Client {
    pub fn new(base: Option<&str>, key: &str) -> Result<Client> {
        let base = base
            .unwrap_or(DEFAULT_BASE)
            .trim_end_matches('/')
            .to_string();
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .user_agent(concat!("Hookscope/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Invalid(format!("cannot set up HTTPS: {e}")))?;
        Ok(Client {
            base,
            key: key.trim().to_string(),
            http,
        })
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Value> {
        let response = request
            .header("X-API-Key", &self.key)
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| {
                Error::Invalid(format!(
                    "systeme.io's API could not be reached ({}): check the internet connection",
                    e.without_url()
                ))
            })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = response.bytes().await.unwrap_or_default();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        Err(Error::Invalid(match status.as_u16() {
            401 | 403 => "systeme.io refused the API key: create one under Settings → Public API keys and set it again".to_string(),
            422 => format!("systeme.io refused the webhook: {}", problem(&body)),
            429 => format!(
                "systeme.io is limiting requests; try again{}",
                retry_after.map(|s| format!(" in {s} s")).unwrap_or_default()
            ),
            code => format!("systeme.io answered {code}: {}", problem(&body)),
        }))
    }

    /// Every Settings webhook of the account (all pages).
    pub async fn list(&self) -> Result<Vec<RemoteWebhook>> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut url = url::Url::parse(&format!("{}/api/webhooks", self.base))
                .map_err(|e| Error::Invalid(format!("systeme.io API address: {e}")))?;
            url.query_pairs_mut()
                .append_pair("limit", &PAGE.to_string());
            if let Some(after) = &after {
                url.query_pairs_mut().append_pair("startingAfter", after);
            }
            let body = self.call(self.http.get(url)).await?;
            let items = body
                .get("items")
                .or_else(|| body.get("hydra:member"))
                .unwrap_or(&body)
                .clone();
            let page: Vec<RemoteWebhook> = serde_json::from_value(items).map_err(|e| {
                Error::Invalid(format!("systeme.io's webhook list was not understood: {e}"))
            })?;
            let more = body
                .get("hasMore")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            after = page.last().map(|w| w.id.clone());
            all.extend(page);
            if !more || after.is_none() {
                return Ok(all);
            }
        }
    }

    pub async fn create(
        &self,
        name: &str,
        url: &str,
        secret: &str,
        events: &[String],
    ) -> Result<RemoteWebhook> {
        let body = self
            .call(
                self.http
                    .post(format!("{}/api/webhooks", self.base))
                    .header("Content-Type", "application/json")
                    .body(
                        json!({
                            "name": name,
                            "url": url,
                            "secret": secret,
                            "subscriptions": events,
                            "active": true,
                        })
                        .to_string(),
                    ),
            )
            .await?;
        serde_json::from_value(body)
            .map_err(|e| Error::Invalid(format!("systeme.io's answer was not understood: {e}")))
    }

    pub async fn update_url(&self, id: &str, url: &str) -> Result<RemoteWebhook> {
        let body = self
            .call(
                self.http
                    .patch(format!("{}/api/webhooks/{id}", self.base))
                    .header("Content-Type", "application/merge-patch+json")
                    .body(json!({ "url": url }).to_string()),
            )
            .await?;
        serde_json::from_value(body)
            .map_err(|e| Error::Invalid(format!("systeme.io's answer was not understood: {e}")))
    }
}

/// The message of an API problem answer (`violations`, `detail`, `message`).
fn problem(body: &Value) -> String {
    if let Some(violations) = body.get("violations").and_then(Value::as_array) {
        let messages: Vec<String> = violations
            .iter()
            .map(|v| {
                let path = v.get("propertyPath").and_then(Value::as_str).unwrap_or("");
                let message = v
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("invalid");
                if path.is_empty() {
                    message.to_string()
                } else {
                    format!("{path}: {message}")
                }
            })
            .collect();
        if !messages.is_empty() {
            return messages.join("; ");
        }
    }
    ["detail", "message", "title"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_str))
        .unwrap_or("no details")
        .to_string()
}

/// Does `url` point at the endpoint with this token (on any host)?
pub fn points_at(url: &str, token: &str) -> bool {
    let Ok(url) = url::Url::parse(url) else {
        return false;
    };
    let prefix = format!("/h/{token}");
    url.path() == prefix || url.path().starts_with(&format!("{prefix}/"))
}

/// The Settings webhook of this endpoint, pointed at `public_url`: the one found on
/// another host is updated; none found, one is created with `new_secret()`.
pub async fn register(
    client: &Client,
    token: &str,
    public_url: &str,
    name: &str,
    events: &[String],
    new_secret: impl FnOnce() -> String,
) -> Result<Registration> {
    if !public_url.starts_with("https://") {
        return Err(Error::Invalid(format!(
            "systeme.io's Settings webhooks need an HTTPS URL, and {public_url} is not one: use a cloudflared or ngrok tunnel"
        )));
    }
    let unknown: Vec<&String> = events
        .iter()
        .filter(|e| !EVENTS.contains(&e.as_str()))
        .collect();
    if events.is_empty() || !unknown.is_empty() {
        return Err(Error::Invalid(format!(
            "events: pick one or more of {}",
            EVENTS.join(", ")
        )));
    }
    let existing = client.list().await?;
    let mine: Vec<&RemoteWebhook> = existing
        .iter()
        .filter(|w| points_at(&w.url, token))
        .collect();
    if let Some(current) = mine.iter().find(|w| w.url == public_url) {
        return Ok(Registration {
            action: "unchanged",
            webhook: (*current).clone(),
            previous_url: None,
            new_secret: None,
        });
    }
    if let Some(stale) = mine.first() {
        let webhook = client.update_url(&stale.id, public_url).await?;
        return Ok(Registration {
            action: "updated",
            webhook,
            previous_url: Some(stale.url.clone()),
            new_secret: None,
        });
    }
    let secret = new_secret();
    match client.create(name, public_url, &secret, events).await {
        Ok(webhook) => Ok(Registration {
            action: "created",
            webhook,
            previous_url: None,
            new_secret: Some(secret),
        }),
        // Registered meanwhile (or listed before it was visible): adopt that one.
        Err(Error::Invalid(message)) if message.contains("already used") => {
            let again = client.list().await?;
            match again.into_iter().find(|w| w.url == public_url) {
                Some(webhook) => Ok(Registration {
                    action: "unchanged",
                    webhook,
                    previous_url: None,
                    new_secret: None,
                }),
                None => Err(Error::Invalid(message)),
            }
        }
        Err(error) => Err(error),
    }
}

/// Registers `endpoint` at `public_base` (`https://NAME.trycloudflare.com`): a new
/// webhook gets the endpoint's secret when it has one, else a fresh one.
pub async fn register_endpoint(
    api_base: Option<&str>,
    key: &str,
    endpoint: &crate::endpoints::Endpoint,
    public_base: &str,
    events: Option<Vec<String>>,
) -> Result<Registration> {
    let events = events.unwrap_or_else(|| EVENTS.iter().map(|e| e.to_string()).collect());
    let client = Client::new(api_base, key)?;
    let url = format!("{}/h/{}", public_base.trim_end_matches('/'), endpoint.token);
    let name = format!("Hookscope – {}", endpoint.name);
    let reuse = endpoint.secret.clone();
    register(&client, &endpoint.token, &url, &name, &events, || {
        reuse.unwrap_or_else(|| crate::tokens::random_hex(24))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhooks_are_matched_by_endpoint_path_on_any_host() {
        assert!(points_at("https://a.trycloudflare.com/h/abc", "abc"));
        assert!(points_at("https://b.ngrok.app/h/abc/orders?x=1", "abc"));
        assert!(!points_at("https://a.trycloudflare.com/h/abcd", "abc"));
        assert!(!points_at("https://a.example/other/h/abc", "abc"));
        assert!(!points_at("not a url", "abc"));
    }

    #[test]
    fn problems_name_the_field() {
        let body = json!({"violations": [{"propertyPath": "url", "message": "This value is already used."}]});
        assert_eq!(problem(&body), "url: This value is already used.");
        assert_eq!(problem(&json!({"detail": "Nope"})), "Nope");
        assert_eq!(problem(&Value::Null), "no details");
    }
}
