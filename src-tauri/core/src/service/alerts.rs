//! Alerts: the rules the user set, and a watcher that raises an alert (once per episode)
//! when one's cause appears: deliveries failing verification, a sender outside
//! systeme.io, a forward target failing, the public URL not reaching Hookscope, an
//! endpoint silent for too long. Each raised alert is stored and announced on
//! [`Alerts::raised`] (the live stream, the alert webhook, the desktop's notifications).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::store::alerts::{self, Alert, AlertKind, AlertRule, NewAlertRule, Raise};
use crate::store::endpoints;
use crate::store::events::EventMeta;
use crate::store::events::cadence;
use crate::store::forwards::ForwardUpdate;
use crate::timefmt::{now_micros, parse_rfc3339_micros};

use super::probe::{Probe, ProbeView};
use super::store::Store;

/// Deliveries older than this when indexed (an import, a backlog after a restart) are
/// history, not news: they raise nothing.
const NEWS_FOR: Duration = Duration::from_secs(10 * 60);
/// The probe's episode: there is one public URL.
const PROBE_SUBJECT: &str = "public-url";

pub struct Alerts {
    store: Arc<Store>,
    /// Each alert as it is raised.
    pub raised: broadcast::Sender<Arc<Alert>>,
    /// The rules, kept in memory: the watcher looks at them for every delivery.
    rules: RwLock<Vec<AlertRule>>,
    /// Open episodes `(rule, subject)`, so a delivery that ends none writes nothing.
    open: std::sync::Mutex<HashSet<(i64, String)>>,
    /// How often silences are looked for.
    pub silence_every: Duration,
}

impl Alerts {
    /// The rules and open episodes as stored (at start, before the watcher runs).
    pub fn load(store: Arc<Store>, silence_every: Duration) -> Result<Alerts> {
        let conn = store.reads.get()?;
        let rules = alerts::list_rules(&conn)?;
        let open = open_episodes(&conn)?;
        drop(conn);
        Ok(Alerts {
            store,
            raised: broadcast::channel(crate::service::STREAM_BUFFER).0,
            rules: RwLock::new(rules),
            open: std::sync::Mutex::new(open),
            silence_every,
        })
    }

    pub fn rules(&self) -> Vec<AlertRule> {
        self.rules.read().expect("alert rules").clone()
    }

    pub async fn add_rule(&self, rule: NewAlertRule) -> Result<AlertRule> {
        let rule = rule.checked()?;
        let added = self
            .store
            .writer
            .run(move |conn| alerts::add_rule(conn, &rule))
            .await?;
        self.rules.write().expect("alert rules").push(added.clone());
        Ok(added)
    }

    pub async fn delete_rule(&self, id: i64) -> Result<()> {
        self.store
            .writer
            .run(move |conn| alerts::delete_rule(conn, id))
            .await?;
        self.rules
            .write()
            .expect("alert rules")
            .retain(|r| r.id != id);
        self.open
            .lock()
            .expect("open alerts")
            .retain(|(rule, _)| *rule != id);
        Ok(())
    }

    pub async fn list(&self, unread_only: bool) -> Result<Vec<Alert>> {
        self.store
            .read(move |conn| alerts::list(conn, unread_only, 200))
            .await
    }

    pub async fn acknowledge(&self, ids: Vec<i64>) -> Result<usize> {
        let read = self
            .store
            .writer
            .run(move |conn| alerts::acknowledge(conn, &ids))
            .await?;
        // A source alert read ends its episode: forget it so the next one is told.
        let still_open = self.store.read(open_episodes).await?;
        *self.open.lock().expect("open alerts") = still_open;
        Ok(read)
    }

    /// Raises the alert unless its episode is open; announces it when raised.
    async fn raise(&self, raise: Raise) {
        let key = (raise.rule_id, raise.subject.clone());
        if self.open.lock().expect("open alerts").contains(&key) {
            return;
        }
        match self
            .store
            .writer
            .run(move |conn| alerts::raise(conn, &raise))
            .await
        {
            Ok(raised) => {
                self.open.lock().expect("open alerts").insert(key);
                if let Some(alert) = raised {
                    tracing::warn!(kind = %alert.kind, message = %alert.message, "alert");
                    let _ = self.raised.send(Arc::new(alert));
                }
            }
            Err(error) => tracing::warn!(%error, "an alert could not be stored"),
        }
    }

    /// Ends the episode if one is open (nothing is written otherwise).
    async fn clear(&self, rule_id: i64, subject: String) {
        let key = (rule_id, subject);
        if !self.open.lock().expect("open alerts").remove(&key) {
            return;
        }
        let (rule, subject) = key;
        if let Err(error) = self
            .store
            .writer
            .run(move |conn| alerts::clear(conn, rule, &subject))
            .await
        {
            tracing::warn!(%error, "an alert's end could not be stored");
        }
    }

    fn rules_of(&self, kind: AlertKind, endpoint_id: Option<&str>) -> Vec<AlertRule> {
        self.rules
            .read()
            .expect("alert rules")
            .iter()
            .filter(|rule| rule.kind == kind)
            .filter(|rule| match (&rule.endpoint_id, endpoint_id) {
                (None, _) => true,
                (Some(wanted), Some(id)) => wanted == id,
                (Some(_), None) => false,
            })
            .cloned()
            .collect()
    }
}

fn open_episodes(conn: &rusqlite::Connection) -> Result<HashSet<(i64, String)>> {
    let mut stmt =
        conn.prepare_cached("SELECT rule_id, subject FROM alerts WHERE cleared_at IS NULL")?;
    let open = stmt
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(open)
}

/// What the watcher remembers between deliveries: failures in a row.
#[derive(Default)]
struct Streaks {
    /// Deliveries failing verification in a row, per endpoint.
    invalid: HashMap<String, i64>,
    /// Forward attempts failing in a row, per target.
    forward: HashMap<String, i64>,
}

/// Watches deliveries, forward results, the probe and the clock until `shutdown`.
pub async fn watch(
    alerts: Arc<Alerts>,
    probe: Arc<Probe>,
    forwarded: broadcast::Sender<Arc<ForwardUpdate>>,
    shutdown: CancellationToken,
) {
    let mut delivered = alerts.store.published.subscribe();
    let mut forwarded = forwarded.subscribe();
    let mut probed = probe.watch();
    let mut silence = tokio::time::interval(alerts.silence_every);
    silence.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut streaks = Streaks::default();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            meta = delivered.recv() => match meta {
                Ok(meta) => on_delivery(&alerts, &mut streaks, &meta).await,
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
            update = forwarded.recv() => match update {
                Ok(update) => on_forward(&alerts, &mut streaks, &update).await,
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
            changed = probed.changed() => {
                if changed.is_err() { return }
                let view = probed.borrow_and_update().clone();
                on_probe(&alerts, view).await;
            }
            _ = silence.tick() => {
                if let Err(error) = look_for_silences(&alerts).await {
                    tracing::warn!(%error, "silences could not be looked for");
                }
            }
        }
    }
}

async fn on_delivery(alerts: &Alerts, streaks: &mut Streaks, meta: &EventMeta) {
    let received = parse_rfc3339_micros(&meta.received_at).unwrap_or(0);
    if now_micros() - received > NEWS_FOR.as_micros() as i64 {
        return;
    }
    let endpoint = meta.endpoint.as_str();
    for rule in alerts.rules_of(AlertKind::Silence, Some(endpoint)) {
        let any_type = silence_subject(endpoint, None);
        alerts.clear(rule.id, any_type).await;
        if rule.event_type.is_some() && rule.event_type == meta.event_type {
            alerts
                .clear(
                    rule.id,
                    silence_subject(endpoint, meta.event_type.as_deref()),
                )
                .await;
        }
    }
    match meta.signature {
        "invalid" => {
            let streak = streaks.invalid.entry(endpoint.to_string()).or_default();
            *streak += 1;
            let streak = *streak;
            for rule in alerts.rules_of(AlertKind::Verification, Some(endpoint)) {
                if streak >= rule.threshold.unwrap_or(3) {
                    alerts
                        .raise(Raise {
                            rule_id: rule.id,
                            kind: AlertKind::Verification,
                            subject: format!("endpoint:{endpoint}"),
                            endpoint_id: Some(endpoint.to_string()),
                            event_type: None,
                            message: format!(
                                "{streak} deliveries in a row to {} failed signature verification",
                                meta.endpoint_name
                            ),
                            advice: "The secret in systeme.io and the endpoint's secret differ (rotated or mistyped): copy it again into Endpoints → Set secret, or register the webhook again from Health.".into(),
                        })
                        .await;
                }
            }
        }
        "valid" => {
            streaks.invalid.remove(endpoint);
            for rule in alerts.rules_of(AlertKind::Verification, Some(endpoint)) {
                alerts.clear(rule.id, format!("endpoint:{endpoint}")).await;
            }
        }
        _ => {}
    }
    if meta.sender == Some("outside") {
        let ip = meta.client_ip.as_deref().unwrap_or("an unknown address");
        for rule in alerts.rules_of(AlertKind::Source, Some(endpoint)) {
            alerts
                .raise(Raise {
                    rule_id: rule.id,
                    kind: AlertKind::Source,
                    // One per endpoint until read, whatever the address: a sender
                    // spraying from many addresses raises one alert, not one each.
                    subject: format!("endpoint:{endpoint}"),
                    endpoint_id: Some(endpoint.to_string()),
                    event_type: meta.event_type.clone(),
                    message: format!(
                        "A delivery to {} came from {ip}, which is not one of systeme.io's addresses",
                        meta.endpoint_name
                    ),
                    advice: "If you did not send it yourself, someone else knows this webhook URL: set a secret on the endpoint (signed deliveries cannot be forged) or make a new endpoint and point systeme.io at it.".into(),
                })
                .await;
        }
    }
}

/// A forward target as an alert may say it: no credentials, no query (an alert may go to
/// a chat channel).
fn shown_target(target: &str) -> String {
    match url::Url::parse(target) {
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_query(None);
            url.set_fragment(None);
            url.to_string()
        }
        Err(_) => "the forward target".to_string(),
    }
}

async fn on_forward(alerts: &Alerts, streaks: &mut Streaks, update: &ForwardUpdate) {
    let target = update.forward.target.clone();
    let rules = alerts.rules_of(AlertKind::Forward, None);
    let subject = format!("target:{target}");
    if update.forward.state == "delivered" {
        streaks.forward.remove(&target);
        for rule in rules {
            alerts.clear(rule.id, subject.clone()).await;
        }
        return;
    }
    let streak = streaks.forward.entry(target.clone()).or_default();
    *streak += 1;
    let streak = *streak;
    let why = update.forward.error.as_deref().unwrap_or("no answer");
    for rule in rules {
        if streak >= rule.threshold.unwrap_or(3) {
            alerts
                .raise(Raise {
                    rule_id: rule.id,
                    kind: AlertKind::Forward,
                    subject: subject.clone(),
                    endpoint_id: None,
                    event_type: None,
                    message: format!(
                        "Forwarding to {} failed {streak} times in a row ({why})",
                        shown_target(&target)
                    ),
                    advice: "Check that your handler runs and answers 2xx; Hookscope keeps retrying, and Replay sends what it missed once it is back.".into(),
                })
                .await;
        }
    }
}

async fn on_probe(alerts: &Alerts, view: Option<ProbeView>) {
    for rule in alerts.rules_of(AlertKind::Probe, None) {
        match &view {
            Some(view) if !view.reaches => {
                alerts
                    .raise(Raise {
                        rule_id: rule.id,
                        kind: AlertKind::Probe,
                        subject: PROBE_SUBJECT.into(),
                        endpoint_id: None,
                        event_type: None,
                        message: format!(
                            "The public URL does not reach this Hookscope: {}",
                            view.error.as_deref().unwrap_or("no answer")
                        ),
                        advice: view.advice.clone().unwrap_or_default(),
                    })
                    .await
            }
            Some(_) => alerts.clear(rule.id, PROBE_SUBJECT.into()).await,
            // No public URL (off, or between two tunnels): nothing is known; the episode
            // ends when a probe reaches again.
            None => {}
        }
    }
}

fn silence_subject(endpoint: &str, event_type: Option<&str>) -> String {
    format!("endpoint:{endpoint} type:{}", event_type.unwrap_or("*"))
}

/// For each silence rule, each endpoint it watches that has received before: silent for
/// longer than the rule's threshold (or the learned one)?
async fn look_for_silences(alerts: &Alerts) -> Result<()> {
    let rules = alerts.rules_of(AlertKind::Silence, None);
    if rules.is_empty() {
        return Ok(());
    }
    let found = alerts
        .store
        .read(move |conn| {
            let endpoints = endpoints::list(conn)?;
            let now = now_micros();
            let mut found = Vec::new();
            for rule in &rules {
                for endpoint in endpoints
                    .iter()
                    .filter(|e| rule.endpoint_id.as_ref().is_none_or(|id| *id == e.id))
                {
                    let wanted = match rule.event_type.as_deref() {
                        Some(t) => cadence::Arrivals::OfType(t),
                        None => cadence::Arrivals::Any,
                    };
                    let arrivals =
                        cadence::recent_arrivals(conn, &endpoint.id, wanted, cadence::LEARN_FROM)?;
                    let Some(&last) = arrivals.first() else {
                        continue; // never received: nothing usual to miss
                    };
                    let threshold = match rule.threshold {
                        Some(secs) => Some(secs),
                        None => cadence::learned_silence_secs(&arrivals),
                    };
                    let Some(threshold) = threshold else { continue };
                    let silent_for = (now - last) / 1_000_000;
                    if silent_for > threshold {
                        found.push((rule.clone(), endpoint.clone(), silent_for, threshold));
                    }
                }
            }
            Ok(found)
        })
        .await?;
    for (rule, endpoint, silent_for, threshold) in found {
        let what = match &rule.event_type {
            Some(t) => format!("no {t}"),
            None => "nothing".to_string(),
        };
        let learned = if rule.threshold.is_none() {
            " (learned from its history)"
        } else {
            ""
        };
        alerts
            .raise(Raise {
                rule_id: rule.id,
                kind: AlertKind::Silence,
                subject: silence_subject(&endpoint.id, rule.event_type.as_deref()),
                endpoint_id: Some(endpoint.id.clone()),
                event_type: rule.event_type.clone(),
                message: format!(
                    "{} has received {what} for {}, longer than {}{learned}",
                    endpoint.name,
                    human_secs(silent_for),
                    human_secs(threshold)
                ),
                advice: "Open Health: if the public URL reaches Hookscope, check in systeme.io that the webhook still points at it and that the funnel is live.".into(),
            })
            .await;
    }
    Ok(())
}

/// `90 s`, `12 min`, `5 h`, `3 d`.
pub fn human_secs(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 2 * 3600 => format!("{} min", s / 60),
        s if s < 2 * 86400 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_target_is_shown_without_credentials_or_query() {
        assert_eq!(
            super::shown_target("https://user:secret@hooks.example.com/in?key=k#x"),
            "https://hooks.example.com/in"
        );
        assert_eq!(super::shown_target("not a url"), "the forward target");
    }
}
