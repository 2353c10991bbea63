//! Insights: learned shapes per event type, and funnel figures.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use serde_json::json;

use crate::error::Error;
use crate::http::state::AppState;

use crate::store::funnels;
use crate::store::shapes;

use super::answer::{ApiQuery, ApiResult};

pub(super) async fn list_shapes(
    State(state): State<Arc<AppState>>,
) -> ApiResult<Json<serde_json::Value>> {
    let shapes = state
        .read(|conn| {
            // One pass over the drifted deliveries only (a partial index), not one count
            // over every delivery of each type.
            let drifted: std::collections::HashMap<String, i64> = conn
                .prepare_cached(
                    "SELECT event_type, count(*) FROM events
                     WHERE drift IS NOT NULL AND event_type IS NOT NULL GROUP BY event_type",
                )?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(shapes::list(conn)?
                .into_iter()
                .map(|(event_type, deliveries)| {
                    json!({
                        "drifted": drifted.get(&event_type).copied().unwrap_or(0),
                        "event_type": event_type,
                        "deliveries": deliveries,
                    })
                })
                .collect::<Vec<_>>())
        })
        .await?;
    Ok(Json(json!({"shapes": shapes})))
}

/// One type's shape: each path, the kinds of value seen there and how often.
pub(super) async fn get_shape(
    State(state): State<Arc<AppState>>,
    Path(event_type): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let wanted = event_type.clone();
    let shape = state
        .read(move |conn| shapes::load(conn, &wanted))
        .await?
        .ok_or_else(|| Error::NotFound(format!("no deliveries of type {event_type} yet")))?
        .shape();
    let paths: Vec<_> = shape
        .paths
        .iter()
        .map(|(path, stats)| {
            json!({
                "path": path,
                "seen": stats.seen,
                "always": stats.seen == shape.deliveries,
                "kinds": stats.kinds,
            })
        })
        .collect();
    Ok(Json(json!({
        "event_type": event_type,
        "deliveries": shape.deliveries,
        "paths": paths,
    })))
}

pub(super) async fn funnel_report(
    State(state): State<Arc<AppState>>,
    ApiQuery(filter): ApiQuery<funnels::FunnelFilter>,
) -> ApiResult<Json<funnels::FunnelReport>> {
    Ok(Json(
        state
            .read(move |conn| funnels::report(conn, &filter))
            .await?,
    ))
}
