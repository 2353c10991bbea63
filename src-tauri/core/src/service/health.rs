//! "Is it reaching me?" in one answer (`GET /api/health`, the window's Health view): the
//! probe of the public URL, per endpoint its last delivery, each event type's cadence,
//! signature verdicts over the last day, where systeme.io's webhooks point, and the open
//! alerts with the rules that raise them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::Result;
use crate::store::alerts::{Alert, AlertRule};
use crate::store::endpoints;
use crate::store::events::cadence::{self, TypeCadence, VerdictCounts};
use crate::systeme::RemoteWebhook;
use crate::timefmt::{format_micros, now_micros};

use super::alerts::Alerts;
use super::probe::{Probe, ProbeView};
use super::public::PublicUrls;
use super::store::Store;
use super::systeme::SystemeLink;

/// systeme.io is asked at most this often for its webhooks (opening the view twice must
/// not cost two calls to its API, which limits them).
const SYSTEME_FRESH_FOR: Duration = Duration::from_secs(60);
/// Event types shown per endpoint.
const MOST_TYPES: usize = 30;
/// Event types are shown when they arrived within this many days.
const CADENCE_DAYS: i64 = 90;

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct HealthReport {
    /// The public base URL while a tunnel (or a URL of yours) is up, else null.
    pub public_url: Option<String>,
    /// The last check of the public URL, or null (no public URL, or not checked yet).
    pub probe: Option<ProbeView>,
    pub endpoints: Vec<EndpointHealth>,
    pub systeme: SystemeHealth,
    /// Unread alerts, newest first.
    pub alerts: Vec<Alert>,
    pub rules: Vec<AlertRule>,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct EndpointHealth {
    pub id: String,
    pub name: String,
    /// Its URL through the public URL, or null without one.
    pub public_webhook_url: Option<String>,
    pub last_delivery_at: Option<String>,
    /// The event types that arrived in the last 90 days, busiest first.
    pub types: Vec<TypeCadence>,
    /// Verdicts of the deliveries of the last 24 hours.
    pub signatures_last_day: VerdictCounts,
    pub has_secret: bool,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct SystemeHealth {
    /// An API key is stored: the webhooks below were asked for.
    pub key_set: bool,
    pub webhooks: Vec<SystemeWebhookHealth>,
    /// Why systeme.io could not be asked, or null.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct SystemeWebhookHealth {
    pub id: String,
    pub name: Option<String>,
    pub url: String,
    pub subscriptions: Vec<String>,
    /// The Hookscope endpoint whose path it carries, or null (not Hookscope's).
    pub endpoint_id: Option<String>,
    /// It points at the endpoint's current public URL.
    pub points_here: bool,
    /// What is wrong, when it points elsewhere: fixed by registering the endpoint again.
    pub problem: Option<String>,
}

/// A systeme.io webhook with the endpoint whose path it carries, if any.
type Matched = (RemoteWebhook, Option<endpoints::Endpoint>);

pub struct Health {
    store: Arc<Store>,
    public: Arc<PublicUrls>,
    systeme: Arc<SystemeLink>,
    pub probe: Arc<Probe>,
    pub alerts: Arc<Alerts>,
    /// systeme.io's last answer (each webhook with the endpoint it points at) and when it
    /// came.
    remote: tokio::sync::Mutex<Option<(Instant, Vec<Matched>)>>,
}

impl Health {
    pub fn new(
        store: Arc<Store>,
        public: Arc<PublicUrls>,
        systeme: Arc<SystemeLink>,
        probe: Arc<Probe>,
        alerts: Arc<Alerts>,
    ) -> Health {
        Health {
            store,
            public,
            systeme,
            probe,
            alerts,
            remote: tokio::sync::Mutex::new(None),
        }
    }

    pub async fn report(&self) -> Result<HealthReport> {
        let day = 24 * 3600 * 1_000_000;
        let since = now_micros() - day;
        let types_since = now_micros() - CADENCE_DAYS * day;
        let endpoints = self
            .store
            .read(move |conn| {
                let mut out = Vec::new();
                for endpoint in endpoints::list(conn)? {
                    let types =
                        cadence::type_cadences(conn, &endpoint.id, types_since, MOST_TYPES)?;
                    let last =
                        cadence::recent_arrivals(conn, &endpoint.id, cadence::Arrivals::Any, 1)?;
                    let verdicts = cadence::verdicts_since(conn, &endpoint.id, since)?;
                    out.push((endpoint, types, last.first().copied(), verdicts));
                }
                Ok(out)
            })
            .await?;
        let endpoints: Vec<EndpointHealth> = endpoints
            .into_iter()
            .map(|(endpoint, types, last, verdicts)| EndpointHealth {
                public_webhook_url: self.public.public_webhook_url(&endpoint),
                id: endpoint.id,
                name: endpoint.name,
                last_delivery_at: last.map(format_micros),
                types,
                signatures_last_day: verdicts,
                has_secret: endpoint.has_secret,
            })
            .collect();
        let systeme = self.systeme_health(&endpoints).await;
        Ok(HealthReport {
            public_url: self.public.public_base(),
            probe: self.probe.last(),
            systeme,
            alerts: self.alerts.list(true).await?,
            rules: self.alerts.rules(),
            endpoints,
        })
    }

    /// Forgets systeme.io's last answer (after a registration changed it).
    pub async fn systeme_changed(&self) {
        *self.remote.lock().await = None;
    }

    async fn systeme_health(&self, endpoints: &[EndpointHealth]) -> SystemeHealth {
        let key_set = self.systeme.has_key().await.unwrap_or(false);
        if !key_set {
            return SystemeHealth {
                key_set,
                webhooks: Vec::new(),
                error: None,
            };
        }
        let mut remote = self.remote.lock().await;
        let fresh = remote
            .as_ref()
            .filter(|(at, _)| at.elapsed() < SYSTEME_FRESH_FOR)
            .map(|(_, hooks)| hooks.clone());
        let webhooks = match fresh {
            Some(hooks) => hooks,
            // Matched to their endpoints by `SystemeLink::webhooks` (by the path's token).
            None => match self.systeme.webhooks().await {
                Ok(found) => {
                    *remote = Some((Instant::now(), found.clone()));
                    found
                }
                Err(error) => {
                    return SystemeHealth {
                        key_set,
                        webhooks: Vec::new(),
                        error: Some(error.to_string()),
                    };
                }
            },
        };
        SystemeHealth {
            key_set,
            webhooks: webhooks
                .into_iter()
                .map(|(hook, endpoint)| compare(hook, endpoint.as_ref(), endpoints))
                .collect(),
            error: None,
        }
    }
}

/// Where one systeme.io webhook points, against the endpoint whose path it carries.
fn compare(
    hook: RemoteWebhook,
    endpoint: Option<&endpoints::Endpoint>,
    health: &[EndpointHealth],
) -> SystemeWebhookHealth {
    let public = endpoint.and_then(|e| {
        health
            .iter()
            .find(|h| h.id == e.id)
            .and_then(|h| h.public_webhook_url.clone())
    });
    let points_here = public.as_deref().is_some_and(|public| {
        hook.url.trim_end_matches('/') == public
            || hook.url.starts_with(&format!("{public}/"))
            || hook.url.starts_with(&format!("{public}?"))
    });
    let problem = match (endpoint, &public) {
        (None, _) => None,
        (Some(_), _) if points_here => None,
        (Some(e), Some(public)) => Some(format!(
            "points at {}, not {}'s public URL {public}: deliveries go nowhere",
            hook.url, e.name
        )),
        (Some(e), None) => Some(format!(
            "points at {} for {}, but there is no public URL now: start the tunnel",
            hook.url, e.name
        )),
    };
    SystemeWebhookHealth {
        id: hook.id,
        name: hook.name,
        url: hook.url,
        subscriptions: hook.subscriptions,
        endpoint_id: endpoint.map(|e| e.id.clone()),
        points_here,
        problem,
    }
}
