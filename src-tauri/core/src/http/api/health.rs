//! Health and alerts: the health report, a probe on demand, the alerts raised (listed,
//! acknowledged) and the rules that raise them.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use serde::Deserialize;

use crate::error::Error;
use crate::service::alerts::Alerts;
use crate::service::health::{Health, HealthReport};
use crate::service::probe::{Probe, ProbeView};
use crate::store::alerts::{AlertRule, NewAlertRule};

use super::answer::{ApiQuery, ApiResult, json_body};
use super::views::{Acknowledge, Acknowledged, AlertList, AlertRuleList};

pub(super) async fn get_health(State(health): State<Arc<Health>>) -> ApiResult<Json<HealthReport>> {
    Ok(Json(health.report().await?))
}

/// Probes the public URL now: the result, or 400 when there is no public URL.
pub(super) async fn probe_now(State(probe): State<Arc<Probe>>) -> ApiResult<Json<ProbeView>> {
    Ok(Json(probe.check(false).await.ok_or_else(|| {
        Error::Invalid(
            "no public URL to check: start a tunnel, or give your own URL in Tunnel".into(),
        )
    })?))
}

#[derive(Deserialize)]
pub(super) struct AlertsQuery {
    #[serde(default)]
    unread: bool,
}

pub(super) async fn list_alerts(
    State(alerts): State<Arc<Alerts>>,
    ApiQuery(query): ApiQuery<AlertsQuery>,
) -> ApiResult<Json<AlertList>> {
    Ok(Json(AlertList {
        alerts: alerts.list(query.unread).await?,
    }))
}

pub(super) async fn acknowledge_alerts(
    State(alerts): State<Arc<Alerts>>,
    body: Bytes,
) -> ApiResult<Json<Acknowledged>> {
    let Acknowledge { ids } = json_body(&body)?;
    if ids.is_empty() || ids.len() > 1000 {
        return Err(Error::Invalid("ids: give 1 to 1000 alert ids".into()).into());
    }
    Ok(Json(Acknowledged {
        acknowledged: alerts.acknowledge(ids).await?,
    }))
}

pub(super) async fn list_rules(State(alerts): State<Arc<Alerts>>) -> Json<AlertRuleList> {
    Json(AlertRuleList {
        rules: alerts.rules(),
    })
}

pub(super) async fn add_rule(
    State(alerts): State<Arc<Alerts>>,
    body: Bytes,
) -> ApiResult<Json<AlertRule>> {
    let rule: NewAlertRule = json_body(&body)?;
    Ok(Json(alerts.add_rule(rule).await?))
}

pub(super) async fn delete_rule(
    State(alerts): State<Arc<Alerts>>,
    Path(id): Path<String>,
) -> ApiResult<Json<AlertRuleList>> {
    let id = id
        .parse()
        .map_err(|_| Error::NotFound(format!("no alert rule {id:?}")))?;
    alerts.delete_rule(id).await?;
    Ok(Json(AlertRuleList {
        rules: alerts.rules(),
    }))
}
