//! The relay's sync listener (`serve --sync ADDR`): what a follower pulls, and nothing
//! else. Every request needs `Authorization: Bearer SYNC_TOKEN` (its own token, not the
//! API's); without it the answer is 401 and no more. Read-only: the stored deliveries,
//! as received, in the export format with their `seq`:
//!
//! - `GET /sync/v1/deliveries?after=SEQ&limit=N`: up to N (≤ 1000) deliveries after SEQ,
//!   one per line; `X-Hookscope-Head` is the newest delivery's seq (how far there is to go,
//!   read from the index: counting what is left would read it all at every page).
//! - `GET /sync/v1/live?after=SEQ`: every delivery after SEQ, then each new one as it is
//!   committed, for as long as the connection stays; `{"head": SEQ}` every
//!   [`HEARTBEAT`] when there is nothing new.
//!
//! Both carry `X-Hookscope-Relay`, the relay's id: a follower pointed at another store
//! starts over from its beginning.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::exchange::delivery_json::write_delivery;
use crate::http::api::answer::{ApiQuery, refuse};
use crate::store::db::{self, ReadPool};
use crate::store::deliveries;
use crate::tokens::tokens_match;

/// The most deliveries in one page, and the bytes of bodies a page stops after.
const MOST_ROWS: usize = 1000;
const PAGE_BYTES: usize = 8 * 1024 * 1024;
/// How often the live feed speaks when nothing is new, so a follower knows it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// What the sync listener needs: read access, the commit signal, its token.
pub struct SyncState {
    pub reads: ReadPool,
    pub committed: watch::Receiver<i64>,
    pub token: String,
    /// This relay's id (the install id: not a secret).
    pub relay_id: String,
    pub shutdown: CancellationToken,
}

pub fn router(state: Arc<SyncState>) -> Router {
    Router::new()
        .route("/sync/v1/deliveries", get(page))
        .route("/sync/v1/live", get(live))
        .fallback(|| async {
            refuse(
                StatusCode::NOT_FOUND,
                "not_found",
                "the sync listener serves /sync/v1/deliveries and /sync/v1/live only",
            )
        })
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
        .with_state(state)
}

async fn require_token(
    State(state): State<Arc<SyncState>>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !tokens_match(presented, &state.token) {
        let mut refused = refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this is a Hookscope relay's sync listener: it needs the relay's sync token",
        );
        refused.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"hookscope-sync\""),
        );
        return refused;
    }
    next.run(request).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    #[serde(default)]
    after: i64,
    #[serde(default = "default_rows")]
    limit: usize,
}

fn default_rows() -> usize {
    500
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LiveQuery {
    #[serde(default)]
    after: i64,
}

async fn page(
    State(state): State<Arc<SyncState>>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Response {
    let rows = query.limit.clamp(1, MOST_ROWS);
    let read = db::read(&state.reads, move |conn| {
        let found = deliveries::after(conn, query.after, rows, PAGE_BYTES)?;
        let head = deliveries::last_seq(conn)?;
        let mut body = Vec::new();
        for (seq, raw) in &found {
            write_delivery(&mut body, *seq, raw)?;
            body.push(b'\n');
        }
        Ok((body, head))
    })
    .await;
    match read {
        Ok((body, head)) => {
            let mut response = ndjson(&state, Body::from(body));
            response
                .headers_mut()
                .insert("x-hookscope-head", HeaderValue::from(head));
            response
        }
        Err(error) => crate::http::api::answer::ApiError(error).into_response(),
    }
}

async fn live(
    State(state): State<Arc<SyncState>>,
    ApiQuery(query): ApiQuery<LiveQuery>,
) -> Response {
    // Two chunks in flight at most: a follower that reads slowly slows its own feed only.
    let (lines, feed) = mpsc::channel::<std::result::Result<Bytes, std::io::Error>>(2);
    let feeding = state.clone();
    tokio::spawn(async move {
        if let Err(error) = feed_from(&feeding, query.after, &lines).await {
            tracing::warn!(%error, "a follower's live feed stopped");
        }
    });
    ndjson(
        &state,
        Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(feed)),
    )
}

/// Sends every delivery after `after`, then each new one, until the follower goes away or
/// the relay stops.
async fn feed_from(
    state: &SyncState,
    mut after: i64,
    lines: &mpsc::Sender<std::result::Result<Bytes, std::io::Error>>,
) -> Result<()> {
    let mut committed = state.committed.clone();
    loop {
        committed.mark_unchanged();
        let from = after;
        let (chunk, last) = db::read(&state.reads, move |conn| {
            let found = deliveries::after(conn, from, 256, PAGE_BYTES / 2)?;
            let mut chunk = Vec::new();
            for (seq, raw) in &found {
                write_delivery(&mut chunk, *seq, raw)?;
                chunk.push(b'\n');
            }
            Ok((chunk, found.last().map(|(seq, _)| *seq)))
        })
        .await?;
        if let Some(last) = last {
            after = last;
            if lines.send(Ok(Bytes::from(chunk))).await.is_err() {
                return Ok(());
            }
            continue;
        }
        tokio::select! {
            _ = committed.changed() => {}
            _ = tokio::time::sleep(HEARTBEAT) => {
                let head = format!("{{\"head\":{after}}}\n");
                if lines.send(Ok(Bytes::from(head))).await.is_err() {
                    return Ok(());
                }
            }
            _ = lines.closed() => return Ok(()),
            _ = state.shutdown.cancelled() => return Ok(()),
        }
    }
}

fn ndjson(state: &SyncState, body: Body) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(relay) = HeaderValue::from_str(&state.relay_id) {
        headers.insert("x-hookscope-relay", relay);
    }
    response
}
