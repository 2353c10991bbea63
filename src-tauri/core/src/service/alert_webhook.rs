//! The alert webhook: each raised alert POSTed as JSON to a URL the user gave
//! (`--alert-webhook`), for a relay nobody watches. `text` carries the whole alert (what
//! Slack and ntfy-style receivers show; Discord reads `content`, sent too), the other
//! fields say it in parts. Retried with back-off; never sent to Hookscope's own URLs.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::store::alerts::Alert;

use super::public::PublicUrls;

/// How an alert is retried when the receiver does not take it.
#[derive(Debug, Clone, Copy)]
pub struct AlertRetry {
    pub first_wait: Duration,
    pub longest_wait: Duration,
    /// Attempts in all.
    pub attempts: u32,
    pub timeout: Duration,
}

impl Default for AlertRetry {
    /// 1, 2, 4 … 60 s, eight attempts (about three minutes): a receiver that blinks still
    /// gets it; one that is down for long gets the next alert instead of a pile.
    fn default() -> Self {
        AlertRetry {
            first_wait: Duration::from_secs(1),
            longest_wait: Duration::from_secs(60),
            attempts: 8,
            timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Serialize)]
struct Message<'a> {
    text: String,
    content: &'a str,
    kind: &'a str,
    message: &'a str,
    advice: &'a str,
    endpoint_id: Option<&'a str>,
    event_type: Option<&'a str>,
    raised_at: &'a str,
    alert_id: i64,
}

/// The alert webhook's URL checked: http(s), not one of this Hookscope's own addresses.
pub fn checked_url(url: &str, public: &PublicUrls) -> Result<String> {
    let url = url.trim();
    let parsed = url::Url::parse(url).map_err(|error| {
        Error::Invalid(format!(
            "alert webhook: {url:?} is not a URL ({error}); give your receiver's, e.g. https://ntfy.sh/my-topic"
        ))
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(Error::Invalid(format!(
            "alert webhook: {url:?} is not an http:// or https:// URL"
        )));
    }
    if public.is_own_address(url) {
        return Err(Error::Invalid(format!(
            "alert webhook: {url:?} is this Hookscope's own webhook address: alerts would arrive as deliveries. Give your receiver's URL (Slack, Discord, ntfy, your own)"
        )));
    }
    Ok(url.to_string())
}

/// Sends each alert raised to `url` until `shutdown`, one at a time, in order.
pub async fn send_alerts(
    url: String,
    raised: broadcast::Sender<Arc<Alert>>,
    retry: AlertRetry,
    public: Arc<PublicUrls>,
    shutdown: CancellationToken,
) {
    let mut raised = raised.subscribe();
    let client = match reqwest::Client::builder()
        .timeout(retry.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "the alert webhook cannot start");
            return;
        }
    };
    loop {
        let alert = tokio::select! {
            _ = shutdown.cancelled() => return,
            alert = raised.recv() => match alert {
                Ok(alert) => alert,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "alerts were raised faster than the alert webhook took them");
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        // Checked again each time: a tunnel started later may have made it one of ours.
        if public.is_own_address(&url) {
            tracing::warn!(
                url,
                "an alert was not sent: the alert webhook is now this Hookscope's own public URL"
            );
            continue;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = deliver(&client, &url, &alert, retry) => {}
        }
    }
}

async fn deliver(client: &reqwest::Client, url: &str, alert: &Alert, retry: AlertRetry) {
    let text = format!("Hookscope alert: {} {}", alert.message, alert.advice);
    let message = Message {
        content: &text,
        kind: alert.kind.as_str(),
        message: &alert.message,
        advice: &alert.advice,
        endpoint_id: alert.endpoint_id.as_deref(),
        event_type: alert.event_type.as_deref(),
        raised_at: &alert.raised_at,
        alert_id: alert.id,
        text: text.clone(),
    };
    let body = match serde_json::to_vec(&message) {
        Ok(body) => body,
        Err(error) => {
            tracing::warn!(%error, "an alert could not be encoded");
            return;
        }
    };
    let mut wait = retry.first_wait;
    for attempt in 1..=retry.attempts {
        let outcome = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone())
            .send()
            .await;
        let retry_later = match outcome {
            Ok(answer) if answer.status().is_success() => return,
            Ok(answer) => {
                let status = answer.status();
                tracing::warn!(%status, attempt, "the alert webhook refused an alert");
                // 408 and 429 say "later"; any other 4xx will not change by waiting.
                status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429
            }
            Err(error) => {
                tracing::warn!(error = %error.without_url(), attempt, "the alert webhook could not be reached");
                true
            }
        };
        if !retry_later || attempt == retry.attempts {
            tracing::warn!(
                alert = alert.id,
                "an alert was not delivered to the alert webhook"
            );
            return;
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(retry.longest_wait);
    }
}
