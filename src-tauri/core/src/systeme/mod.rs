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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct RemoteWebhook {
    #[serde(default)]
    pub active: Option<bool>,
    #[serde(deserialize_with = "id_as_text")]
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub subscriptions: Vec<String>,
    pub url: String,
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

/// Why a call failed: systeme.io answered no (nothing changed there), or the answer never
/// came (the change may or may not have happened).
#[derive(Debug)]
pub enum Failure {
    Refused(String),
    Unanswered(String),
}

impl From<Failure> for Error {
    fn from(failure: Failure) -> Error {
        match failure {
            Failure::Refused(message) | Failure::Unanswered(message) => Error::Invalid(message),
        }
    }
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

    async fn call(&self, request: reqwest::RequestBuilder) -> std::result::Result<Value, Failure> {
        let response = request
            .header("X-API-Key", &self.key)
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| {
                Failure::Unanswered(format!(
                    "systeme.io's API did not answer ({}): check the internet connection",
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
        let message = match status.as_u16() {
            401 | 403 => "systeme.io refused the API key: create one under Settings → Public API keys and set it again".to_string(),
            422 => format!("systeme.io refused the webhook: {}", problem(&body)),
            429 => format!(
                "systeme.io is limiting requests; try again{}",
                retry_after.map(|s| format!(" in {s} s")).unwrap_or_default()
            ),
            code => format!("systeme.io answered {code}: {}", problem(&body)),
        };
        Err(if status.is_server_error() {
            Failure::Unanswered(message)
        } else {
            Failure::Refused(message)
        })
    }

    /// Every Settings webhook of the account (all pages).
    pub async fn list(&self) -> Result<Vec<RemoteWebhook>> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        // A guard against an API that ignores the cursor: no account has this many.
        for _ in 0..1_000 {
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
            let last = page.last().map(|w| w.id.clone());
            all.extend(page);
            if !more || last.is_none() || last == after {
                return Ok(all);
            }
            after = last;
        }
        Ok(all)
    }

    pub async fn create(
        &self,
        name: &str,
        url: &str,
        secret: &str,
        events: &[String],
    ) -> std::result::Result<RemoteWebhook, Failure> {
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
        understood(body)
    }

    /// Changes what `change` names (`url`, `secret`, `subscriptions`, `active`).
    pub async fn update(
        &self,
        id: &str,
        change: &Value,
    ) -> std::result::Result<RemoteWebhook, Failure> {
        let body = self
            .call(
                self.http
                    .patch(format!("{}/api/webhooks/{id}", self.base))
                    .header("Content-Type", "application/merge-patch+json")
                    .body(change.to_string()),
            )
            .await?;
        understood(body)
    }
}

fn understood(body: Value) -> std::result::Result<RemoteWebhook, Failure> {
    serde_json::from_value(body)
        .map_err(|e| Failure::Unanswered(format!("systeme.io's answer was not understood: {e}")))
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

/// Where the endpoint's secret lives: [`register`] stores a new one there *before* telling
/// systeme.io, so a webhook is never left with a secret Hookscope does not know.
pub trait SecretStore {
    /// Stores (or with `None` clears) the endpoint's secret.
    fn store(&self, secret: Option<String>) -> impl std::future::Future<Output = Result<()>>;
}

/// The endpoint's Settings webhook, pointed at `public_url` and signing with the endpoint's
/// secret: the one found (on any host) is updated, else one is created. `secret` is the
/// endpoint's; without one a fresh one is made and stored first. `events`: the
/// subscriptions to set (all six for a new webhook when `None`).
pub async fn register(
    client: &Client,
    token: &str,
    public_url: &str,
    name: &str,
    events: Option<&[String]>,
    secret: Option<String>,
    store: &impl SecretStore,
) -> Result<Registration> {
    if !public_url.starts_with("https://") {
        return Err(Error::Invalid(format!(
            "systeme.io's Settings webhooks need an HTTPS URL, and {public_url} is not one: use a cloudflared or ngrok tunnel"
        )));
    }
    if let Some(events) = events
        && (events.is_empty() || events.iter().any(|e| !EVENTS.contains(&e.as_str())))
    {
        return Err(Error::Invalid(format!(
            "events: pick one or more of {}",
            EVENTS.join(", ")
        )));
    }
    let existing = client.list().await?;
    let found = existing
        .iter()
        .find(|w| w.url == public_url)
        .or_else(|| existing.iter().find(|w| points_at(&w.url, token)))
        .cloned();
    let had_secret = secret.is_some();
    let secret = match secret {
        Some(secret) => secret,
        None => {
            let fresh = crate::tokens::random_hex(24);
            store.store(Some(fresh.clone())).await?;
            fresh
        }
    };
    // A refusal changed nothing at systeme.io: a secret stored for it goes again. A call
    // left unanswered may have changed it: the secret stays, and the next try fixes it.
    let undo = async |failure: Failure| -> Error {
        if let (false, Failure::Refused(_)) = (had_secret, &failure) {
            let _ = store.store(None).await;
        }
        failure.into()
    };
    let all_events: Vec<String> = EVENTS.iter().map(|e| e.to_string()).collect();
    match found {
        Some(webhook) => {
            let mut change = json!({"url": public_url, "secret": secret, "active": true});
            if let Some(events) = events {
                change["subscriptions"] = json!(events);
            }
            let previous = (webhook.url != public_url).then(|| webhook.url.clone());
            let updated = match client.update(&webhook.id, &change).await {
                Ok(updated) => updated,
                Err(failure) => return Err(undo(failure).await),
            };
            Ok(Registration {
                action: if previous.is_some() {
                    "updated"
                } else {
                    "unchanged"
                },
                webhook: updated,
                previous_url: previous,
                new_secret: (!had_secret).then_some(secret),
            })
        }
        None => {
            let wanted = events.unwrap_or(&all_events);
            match client.create(name, public_url, &secret, wanted).await {
                Ok(webhook) => Ok(Registration {
                    action: "created",
                    webhook,
                    previous_url: None,
                    new_secret: (!had_secret).then_some(secret),
                }),
                // Registered meanwhile (or not listed yet): take that one over.
                Err(Failure::Refused(message)) if message.contains("already used") => {
                    let again = client.list().await?;
                    let Some(webhook) = again.into_iter().find(|w| w.url == public_url) else {
                        return Err(undo(Failure::Refused(message)).await);
                    };
                    let mut change = json!({"url": public_url, "secret": secret, "active": true});
                    if let Some(events) = events {
                        change["subscriptions"] = json!(events);
                    }
                    match client.update(&webhook.id, &change).await {
                        Ok(webhook) => Ok(Registration {
                            action: "unchanged",
                            webhook,
                            previous_url: None,
                            new_secret: (!had_secret).then_some(secret),
                        }),
                        Err(failure) => Err(undo(failure).await),
                    }
                }
                Err(failure) => Err(undo(failure).await),
            }
        }
    }
}

/// Registers `endpoint` at `public_base` (`https://NAME.trycloudflare.com`).
pub async fn register_endpoint(
    api_base: Option<&str>,
    key: &str,
    endpoint: &crate::store::endpoints::Endpoint,
    public_base: &str,
    events: Option<Vec<String>>,
    store: &impl SecretStore,
) -> Result<Registration> {
    let client = Client::new(api_base, key)?;
    let url = format!("{}/h/{}", public_base.trim_end_matches('/'), endpoint.token);
    let name = format!("Hookscope – {}", endpoint.name);
    register(
        &client,
        &endpoint.token,
        &url,
        &name,
        events.as_deref(),
        endpoint.secret.clone(),
        store,
    )
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
