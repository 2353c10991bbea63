//! The relay's sync listener (`serve --sync ADDR`): what a follower pulls, and nothing
//! else (the protocol: [`crate::exchange::sync_protocol`]). Read-only: the stored
//! deliveries, as received, in the export format with their `seq`.
//!
//! It stays bounded whoever connects: a request without the sync token is answered 401
//! and its connection closed at once, before it takes one of the [`FOLLOWERS`] places;
//! pages and the live feed are streamed from the store a few deliveries at a time, and
//! what every reader holds at once (read and encoded, not yet taken by its client) comes
//! out of one budget, so slow readers wait for room instead of growing the relay.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::capture::body::BodyLimit;
use crate::error::Result;
use crate::exchange::delivery_json::{STREAMED_END, write_delivery, write_streamed_start};
use crate::exchange::sync_protocol::{
    self as protocol, HEAD, LIVE_PATH, MOST_LINE, MOST_PAGE_ROWS, PAGE_BYTES, PAGE_PATH, RELAY,
};
use crate::http::api::answer::{ApiQuery, refuse};
use crate::store::db::{self, ReadPool};
use crate::store::deliveries;
use crate::tokens::tokens_match;

/// Followers served at once (pages and live feeds); one more gets 503.
pub const FOLLOWERS: usize = 64;
/// Deliveries read and encoded in one go when they are small.
const BATCH_BYTES: usize = 1024 * 1024;
/// A body larger than this is streamed a slice at a time, as base64.
const STREAMED_FROM: usize = 1024 * 1024;
/// The slices of a streamed body: 768 KiB, 1 MiB as base64 (a multiple of three bytes, so
/// each slice's base64 joins the next's).
const SLICE: usize = 768 * 1024;
/// The budget's unit: permits are KiB.
const UNIT: usize = 1024;

/// What the sync listener needs: read access, the commit signal, its token.
pub struct SyncState {
    pub reads: ReadPool,
    pub committed: watch::Receiver<i64>,
    pub token: String,
    /// This relay's id (the install id: not a secret).
    pub relay_id: String,
    /// The relay's body limit: how long a line can be.
    pub max_body: BodyLimit,
    pub shutdown: CancellationToken,
    /// Places for authenticated followers.
    pub followers: Arc<Semaphore>,
    /// What every reader holds at once, in KiB ([`budget_units`]).
    pub budget: Arc<Semaphore>,
    /// How often the live feed speaks when nothing is new.
    pub heartbeat: std::time::Duration,
}

/// The budget for what readers hold, in KiB: room for two of the longest lines, at least
/// 64 MiB.
pub fn budget_units(max_body: BodyLimit) -> usize {
    (2 * protocol::most_line(max_body)).max(64 * 1024 * 1024) / UNIT
}

pub fn router(state: Arc<SyncState>) -> Router {
    Router::new()
        .route(PAGE_PATH, get(page))
        .route(LIVE_PATH, get(live))
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

/// The token first: without it, 401 and the connection closed. With it, a follower's
/// place, held until its answer has been sent in full.
async fn require_token(
    State(state): State<Arc<SyncState>>,
    mut request: Request,
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
        let headers = refused.headers_mut();
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"hookscope-sync\""),
        );
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        return refused;
    }
    let Ok(place) = state.followers.clone().try_acquire_owned() else {
        let mut busy = refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "this relay serves as many followers as it can: try again in a moment",
        );
        busy.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return busy;
    };
    request.extensions_mut().insert(Place {
        _held: Arc::new(place),
    });
    next.run(request).await
}

/// A follower's place, kept by its answer's body until sent.
#[derive(Clone)]
struct Place {
    _held: Arc<OwnedSemaphorePermit>,
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
    protocol::PAGE_ROWS
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LiveQuery {
    #[serde(default)]
    after: i64,
}

/// A chunk of the answer and the budget it holds, given back once the client took it.
type Chunk = (Bytes, Option<OwnedSemaphorePermit>);

async fn page(
    State(state): State<Arc<SyncState>>,
    axum::Extension(place): axum::Extension<Place>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Response {
    let rows = query.limit.clamp(1, MOST_PAGE_ROWS);
    let head = match db::read(&state.reads, deliveries::last_seq).await {
        Ok(head) => head,
        Err(error) => return crate::http::api::answer::ApiError(error).into_response(),
    };
    let (chunks, body) = mpsc::channel::<Chunk>(1);
    let feeding = state.clone();
    tokio::spawn(async move {
        let mut sent = Sent::default();
        // Nothing past the head the page says.
        let sending = send_after(
            &feeding,
            query.after,
            head,
            rows,
            PAGE_BYTES,
            &chunks,
            &mut sent,
        );
        if let Err(error) = sending.await {
            tracing::warn!(%error, "a follower's page stopped");
        }
    });
    let mut response = ndjson(&state, body, place);
    response.headers_mut().insert(HEAD, HeaderValue::from(head));
    response
}

async fn live(
    State(state): State<Arc<SyncState>>,
    axum::Extension(place): axum::Extension<Place>,
    ApiQuery(query): ApiQuery<LiveQuery>,
) -> Response {
    let (chunks, body) = mpsc::channel::<Chunk>(1);
    let feeding = state.clone();
    tokio::spawn(async move {
        if let Err(error) = feed_from(&feeding, query.after, &chunks).await {
            tracing::warn!(%error, "a follower's live feed stopped");
        }
    });
    ndjson(&state, body, place)
}

/// How far a stream has come.
#[derive(Default)]
struct Sent {
    /// The last seq sent.
    last: Option<i64>,
    rows: usize,
    bytes: usize,
}

/// Sends the deliveries after `after` (up to `until`), up to `rows` of them and until their
/// bodies pass `bytes` (always at least one). Small ones go a batch at a time, a large one
/// a slice at a time (read from the store's pages as it goes, as base64), each piece
/// within the budget and once the piece before it was taken. Returns when done, or when
/// the client went away.
async fn send_after(
    state: &SyncState,
    after: i64,
    until: i64,
    rows: usize,
    bytes: usize,
    chunks: &mpsc::Sender<Chunk>,
    sent: &mut Sent,
) -> Result<()> {
    let mut from = after;
    while sent.rows < rows && (sent.rows == 0 || sent.bytes < bytes) {
        let want = rows - sent.rows;
        let sizes: Vec<(i64, usize)> = db::read(&state.reads, move |conn| {
            deliveries::sizes_after(conn, from, want.min(256))
        })
        .await?
        .into_iter()
        .filter(|(seq, _)| *seq <= until)
        .collect();
        let Some(&(first_seq, first_size)) = sizes.first() else {
            return Ok(());
        };
        if first_size > STREAMED_FROM {
            if !send_streamed(state, first_seq, first_size, chunks).await? {
                return Ok(());
            }
            from = first_seq;
            sent.note(first_seq, first_size);
            continue;
        }
        // A batch: small deliveries together up to BATCH_BYTES, up to the next large one,
        // never past the page's bytes once something was sent.
        let mut count = 0;
        let mut body_bytes = 0;
        for (_, size) in &sizes {
            let over_batch =
                count > 0 && (body_bytes + size > BATCH_BYTES || *size > STREAMED_FROM);
            let over_page = sent.rows + count > 0 && sent.bytes + body_bytes >= bytes;
            if over_batch || over_page {
                break;
            }
            count += 1;
            body_bytes += size;
        }
        let Some(slot) = reserve(state, chunks, body_bytes * 7 / 3 + count * 64 * 1024).await
        else {
            return Ok(());
        };
        let (chunk, last) = db::read(&state.reads, move |conn| {
            let found = deliveries::after(conn, from, count, usize::MAX)?;
            let mut chunk = Vec::with_capacity(body_bytes + count * 1024);
            for (seq, raw) in &found {
                write_delivery(&mut chunk, *seq, raw)?;
                chunk.push(b'\n');
            }
            Ok((chunk, found.last().map(|(seq, _)| *seq)))
        })
        .await?;
        let Some(last) = last else {
            return Ok(());
        };
        from = last;
        sent.note(last, body_bytes);
        sent.rows += count - 1;
        slot.send(Bytes::from(chunk));
    }
    Ok(())
}

/// Streams one large delivery: its fields, its body a slice at a time, its end. False
/// when the client went away.
async fn send_streamed(
    state: &SyncState,
    seq: i64,
    size: usize,
    chunks: &mpsc::Sender<Chunk>,
) -> Result<bool> {
    let Some(slot) = reserve(state, chunks, 64 * 1024).await else {
        return Ok(false);
    };
    let start = db::read(&state.reads, move |conn| {
        let mut start = Vec::new();
        if let Some(raw) = deliveries::head_by_seq(conn, seq)? {
            write_streamed_start(&mut start, seq, &raw)?;
        }
        Ok(start)
    })
    .await?;
    if start.is_empty() {
        // Erased since it was listed: nothing to send for it.
        return Ok(true);
    }
    slot.send(Bytes::from(start));
    let mut offset = 0;
    while offset < size {
        let Some(slot) = reserve(state, chunks, SLICE * 7 / 3).await else {
            return Ok(false);
        };
        let slice = db::read(&state.reads, move |conn| {
            deliveries::body_slice(conn, seq, offset, SLICE)
        })
        .await?;
        if slice.is_empty() {
            break;
        }
        offset += slice.len();
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(&slice);
        slot.send(Bytes::from(encoded));
    }
    let Some(slot) = reserve(state, chunks, 1).await else {
        return Ok(false);
    };
    let mut end = STREAMED_END.to_vec();
    end.push(b'\n');
    slot.send(Bytes::from(end));
    Ok(true)
}

/// A place for the next piece: room in the channel (the piece before was taken), then
/// `bytes` of the budget. `None` when the client went away.
async fn reserve<'c>(
    state: &SyncState,
    chunks: &'c mpsc::Sender<Chunk>,
    bytes: usize,
) -> Option<Slot<'c>> {
    let slot = chunks.reserve().await.ok()?;
    // One piece larger than the whole budget still goes, alone.
    let units = bytes.div_ceil(UNIT).clamp(1, budget_units(state.max_body));
    let permit = tokio::select! {
        permit = state.budget.clone().acquire_many_owned(units as u32) => {
            permit.expect("the budget is never closed")
        }
        () = chunks.closed() => return None,
    };
    Some(Slot { slot, permit })
}

/// A reserved place in a stream, with the budget its piece holds.
struct Slot<'c> {
    slot: mpsc::Permit<'c, Chunk>,
    permit: OwnedSemaphorePermit,
}

impl Slot<'_> {
    fn send(self, bytes: Bytes) {
        self.slot.send((bytes, Some(self.permit)));
    }
}

impl Sent {
    fn note(&mut self, last: i64, body_bytes: usize) {
        self.last = Some(last);
        self.rows += 1;
        self.bytes += body_bytes;
    }
}

/// Sends every delivery after `after`, then each new one, until the follower goes away or
/// the relay stops; a heartbeat when nothing is new.
async fn feed_from(state: &SyncState, mut after: i64, chunks: &mpsc::Sender<Chunk>) -> Result<()> {
    let mut committed = state.committed.clone();
    let mut spoke = false;
    loop {
        committed.mark_unchanged();
        let mut sent = Sent::default();
        send_after(
            state,
            after,
            i64::MAX,
            MOST_PAGE_ROWS,
            PAGE_BYTES,
            chunks,
            &mut sent,
        )
        .await?;
        if chunks.is_closed() {
            return Ok(());
        }
        if let Some(last) = sent.last {
            after = last;
            spoke = true;
            continue;
        }
        // Nothing to send from the start: a heartbeat at once, so the follower knows the
        // feed is there without waiting for the first one.
        if !std::mem::replace(&mut spoke, true) {
            let beat = Bytes::from(protocol::heartbeat(after));
            if chunks.send((beat, None)).await.is_err() {
                return Ok(());
            }
        }
        tokio::select! {
            _ = committed.changed() => {}
            _ = tokio::time::sleep(state.heartbeat) => {
                let beat = Bytes::from(protocol::heartbeat(after));
                if chunks.send((beat, None)).await.is_err() {
                    return Ok(());
                }
            }
            _ = chunks.closed() => return Ok(()),
            _ = state.shutdown.cancelled() => return Ok(()),
        }
    }
}

/// A streamed answer: each chunk's budget is given back once the client has taken it
/// (when the next one is asked for), and the follower's place once the stream ends.
struct Streamed {
    chunks: mpsc::Receiver<Chunk>,
    held: Option<OwnedSemaphorePermit>,
    _place: Place,
}

impl futures_util::Stream for Streamed {
    type Item = std::result::Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.held = None;
        match self.chunks.poll_recv(cx) {
            Poll::Ready(Some((bytes, permit))) => {
                self.held = permit;
                Poll::Ready(Some(Ok(bytes)))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

fn ndjson(state: &SyncState, chunks: mpsc::Receiver<Chunk>, place: Place) -> Response {
    let mut response = Response::new(Body::from_stream(Streamed {
        chunks,
        held: None,
        _place: place,
    }));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        MOST_LINE,
        HeaderValue::from(protocol::most_line(state.max_body) as u64),
    );
    if let Ok(relay) = HeaderValue::from_str(&state.relay_id) {
        headers.insert(RELAY, relay);
    }
    response
}
