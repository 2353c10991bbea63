//! Insights: learned shapes per event type, and funnel figures.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};

use crate::error::Error;
use crate::service::store::Store;
use crate::store::events::query::drifted_by_type;
use crate::store::{funnels, shapes};

use super::answer::{ApiQuery, ApiResult};
use super::views::{ShapeList, ShapePath, ShapeSummary, ShapeView};

pub(super) async fn list_shapes(State(store): State<Arc<Store>>) -> ApiResult<Json<ShapeList>> {
    let shapes = store
        .read(|conn| {
            let drifted = drifted_by_type(conn)?;
            Ok(shapes::list(conn)?
                .into_iter()
                .map(|(event_type, deliveries)| ShapeSummary {
                    drifted: drifted.get(&event_type).copied().unwrap_or(0),
                    event_type,
                    deliveries,
                })
                .collect())
        })
        .await?;
    Ok(Json(ShapeList { shapes }))
}

/// One type's shape: each path, the kinds of value seen there and how often.
pub(super) async fn get_shape(
    State(store): State<Arc<Store>>,
    Path(event_type): Path<String>,
) -> ApiResult<Json<ShapeView>> {
    let wanted = event_type.clone();
    let shape = store
        .read(move |conn| shapes::load(conn, &wanted))
        .await?
        .ok_or_else(|| Error::NotFound(format!("no deliveries of type {event_type} yet")))?
        .shape();
    let paths = shape
        .paths
        .iter()
        .map(|(path, stats)| ShapePath {
            always: stats.seen == shape.deliveries,
            kinds: stats.kinds.clone(),
            path: path.clone(),
            seen: stats.seen,
        })
        .collect();
    Ok(Json(ShapeView {
        deliveries: shape.deliveries,
        event_type,
        paths,
    }))
}

pub(super) async fn funnel_report(
    State(store): State<Arc<Store>>,
    ApiQuery(filter): ApiQuery<funnels::FunnelFilter>,
) -> ApiResult<Json<funnels::FunnelReport>> {
    Ok(Json(
        store
            .read(move |conn| funnels::report(conn, &filter))
            .await?,
    ))
}
