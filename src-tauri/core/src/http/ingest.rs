//! The ingest listener: the only port a tunnel reaches. It answers webhook deliveries on
//! `/h/{token}[/any/sub/path]`, `GET /healthz` and this Hookscope's own probes
//! (`/.hookscope/probe/{nonce}`, never stored), nothing else. A delivery gets its 2xx
//! only after the transaction that stores it committed.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Path;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Extension, Router};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use serde_json::json;

use crate::capture::sender;
use crate::capture::token_guard;
use crate::capture::{RawDelivery, new_event_id};
use crate::http::memory_budget::BodyShare;
use crate::http::state::AppState;
use crate::store::writer::{Arrival, ForwardOrder};
use crate::timefmt::now_micros;

/// Which listener a delivery came in on. The tunnel gets a listener of its own (on
/// loopback) so that its forwarding headers can be believed there and nowhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// The public webhook listener: the peer is the sender.
    Direct,
    /// Where Hookscope's own tunnel connects: its provider says what it reports.
    Tunnel,
    /// Where a tunnel or reverse proxy of yours connects (`--proxy`).
    Proxy,
}

impl Listener {
    /// What the hop in front writes itself about the sender. Asked when a connection is
    /// accepted: one opened through an earlier tunnel keeps what that tunnel reports,
    /// whichever runs when its requests arrive.
    pub fn reported(self, state: &AppState) -> sender::Reported {
        match self {
            Listener::Direct => sender::Reported::Nothing,
            Listener::Tunnel => state.public.tunnels.reported_sender(),
            Listener::Proxy => sender::Reported::LastForwardedFor,
        }
    }
}

pub fn router(state: Arc<AppState>, listener: Listener) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/.hookscope/probe/{nonce}", any(probe_arrived))
        .fallback(deliver)
        .layer(Extension(listener))
        .with_state(state)
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// A probe of the public URL came back: answered, and told to the prober, never stored
/// or forwarded. A nonce this Hookscope is not waiting for is not found.
async fn probe_arrived(State(state): State<Arc<AppState>>, Path(nonce): Path<String>) -> Response {
    if state.probe.arrived(&nonce) {
        answer(StatusCode::OK, json!({"probe": "received"}))
    } else {
        answer(StatusCode::NOT_FOUND, json!({"error": "not found"}))
    }
}

async fn deliver(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(listener): Extension<Listener>,
    Extension(reported): Extension<sender::Reported>,
    request: Request,
) -> Response {
    let received_at = now_micros();
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    let Some(token) = path
        .strip_prefix("/h/")
        .map(|rest| rest.split('/').next().unwrap_or(""))
    else {
        return answer(StatusCode::NOT_FOUND, json!({"error": "not found"}));
    };
    let Some(endpoint) = state.store.directory.lookup(token) else {
        return answer(
            StatusCode::NOT_FOUND,
            json!({"error": "unknown webhook endpoint: check the URL"}),
        );
    };
    let declared = declared_length(&parts.headers);
    let max_body = state.store.max_body.bytes();
    if declared.is_some_and(|len| len > max_body as u64) {
        return too_large(max_body);
    }
    // Held until the delivery is answered: its bytes stay in memory until the commit.
    let mut share = BodyShare::default();
    if let Some(len) = declared
        && state.memory.cover(&mut share, len as usize).is_err()
    {
        return over_budget();
    }
    let reading = read_body(body, declared, max_body, &state, &mut share);
    let body = match tokio::select! {
        read = reading => read,
        _ = state.shutdown.cancelled() => return unavailable("the server is stopping"),
    } {
        Ok(body) => body,
        Err(BodyError::TooLarge) => return too_large(max_body),
        Err(BodyError::TooSlow) => return too_slow(),
        Err(BodyError::OverBudget) => return over_budget(),
        Err(BodyError::Broken(error)) => {
            return answer(
                StatusCode::BAD_REQUEST,
                json!({"error": format!("the request body could not be read: {error}")}),
            );
        }
    };
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect::<Vec<_>>();
    let looped = crate::store::forwards::came_from(&headers, &state.forwarding.install_id);
    let forward_to = endpoint.forward_to.as_deref().and_then(|base| {
        let target = crate::store::forwards::target_url(base, &path, token, parts.uri.query());
        if target.is_none() {
            tracing::warn!(
                path,
                "not forwarded: the sub-path leaves the handler's path"
            );
        }
        target
    });
    let via_tunnel = listener != Listener::Direct;
    let client_ip = sender::client_ip(peer.ip().to_canonical(), &headers, reported);
    let raw = RawDelivery {
        id: new_event_id(),
        received_at,
        endpoint_id: endpoint.id,
        endpoint_name: endpoint.name,
        method: parts.method.as_str().to_string(),
        path,
        query: parts.uri.query().map(str::to_string),
        headers,
        remote_addr: Some(peer.to_string()),
        client_ip: Some(client_ip.to_string()),
        via_tunnel,
        body,
    };
    let canned = endpoint.response;
    let id = raw.id.clone();
    let Some(raw) = keep_api_token_out(raw, &state).await else {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({"error": "this request carries this Hookscope's own API token (in its URL or body); it was not stored"}),
        );
    };
    // Stored as received: decoding and everything derived come after the acknowledgement.
    let forward = forward_to.map(|target| ForwardOrder { target, looped });
    match state.store.writer.store(Arrival { raw, forward }).await {
        Ok(()) => match canned {
            Some(canned) => canned_answer(canned, &id, &state.shutdown).await,
            None => {
                let mut ack = answer(StatusCode::OK, json!({"ok": true, "id": id}));
                if let Ok(value) = header::HeaderValue::from_str(&id) {
                    ack.headers_mut().insert("x-hookscope-event", value);
                }
                ack
            }
        },
        Err(error) => {
            tracing::error!(%error, "delivery not stored");
            unavailable(&error.to_string())
        }
    }
}

/// Bodies up to this size are looked through on the async thread; larger or compressed
/// ones on the blocking pool, a few at a time.
const LOOKED_THROUGH_INLINE: usize = 64 * 1024;

/// The delivery without the install's API token in its headers, or `None` when it
/// carries the token where it cannot be cut out (its URL or body, in any encoding).
async fn keep_api_token_out(mut raw: RawDelivery, state: &AppState) -> Option<RawDelivery> {
    let guard = state.access.token_guard.clone();
    token_guard::strip_from_headers(&mut raw.headers, guard.token());
    let limit = state.store.max_body.bytes();
    let encoded = crate::capture::decode::header(&raw.headers, "content-encoding").is_some();
    if !encoded && raw.body.len() <= LOOKED_THROUGH_INLINE {
        return (!guard.found_in(&raw, limit)).then_some(raw);
    }
    // A compressed body can inflate a thousandfold, a large one decode into several
    // copies: looked into on the blocking pool, a few at a time (the memory budget's
    // decode turns).
    // Turns free as others finish, also while the server drains: a delivery in flight
    // is checked like any other.
    let turn = state.memory.decode_turn().await;
    tokio::task::spawn_blocking(move || {
        let _turn = turn;
        (!guard.found_in(&raw, limit)).then_some(raw)
    })
    .await
    .ok()
    .flatten()
}

/// The endpoint's chosen answer, after its delay. The delivery is already stored; its id
/// travels in `X-Hookscope-Event` since the body is the user's.
async fn canned_answer(
    canned: crate::store::endpoints::CannedResponse,
    id: &str,
    shutdown: &tokio_util::sync::CancellationToken,
) -> Response {
    // A stopping server does not wait out a rehearsed delay.
    tokio::select! {
        _ = tokio::time::sleep(std::time::Duration::from_millis(canned.delay_ms)) => {}
        _ = shutdown.cancelled() => {}
    }
    let mut response = Response::new(Body::from(canned.body));
    *response.status_mut() = StatusCode::from_u16(canned.status).unwrap_or(StatusCode::OK);
    let headers = response.headers_mut();
    for (name, value) in &canned.headers {
        // Checked when the response was set (one stored by an earlier version may not
        // have been); a bad or refused one is skipped rather than failing.
        if crate::store::endpoints::is_framing_header(name)
            || crate::store::endpoints::is_cookie_setter(name)
        {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            header::HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
    if let Ok(value) = header::HeaderValue::from_str(id) {
        headers.insert("x-hookscope-event", value);
    }
    response
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn too_large(limit: usize) -> Response {
    let mut response = answer(
        StatusCode::PAYLOAD_TOO_LARGE,
        json!({"error": format!("body larger than {limit} bytes; nothing was stored")}),
    );
    // The rest of the body is never read, so the connection cannot carry another request:
    // say so, or a client reusing it would see its next request fail.
    response.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    response
}

/// Bodies in flight fill the memory budget: nothing was stored, the sender should retry
/// later. The rest of the body is not read, so the connection closes.
fn over_budget() -> Response {
    let mut response = unavailable("too many large deliveries are arriving at once");
    response.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    response
}

/// Not stored, so not acknowledged: the sender should retry.
fn unavailable(reason: &str) -> Response {
    let mut response = answer(
        StatusCode::SERVICE_UNAVAILABLE,
        json!({"error": format!("not stored: {reason}")}),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
    response
}

/// A body that stalled or trickled: nothing was stored, and the connection cannot be reused.
fn too_slow() -> Response {
    let mut response = answer(
        StatusCode::REQUEST_TIMEOUT,
        json!({"error": "the body did not arrive in time; nothing was stored"}),
    );
    response.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    response
}

enum BodyError {
    TooLarge,
    TooSlow,
    OverBudget,
    Broken(axum::Error),
}

/// Reads the whole body, refusing it as soon as it passes `limit` (whatever
/// `Content-Length` claimed, and for chunked bodies that declare nothing), when it stalls
/// or trickles past the limits' times, or when the memory budget has no room for it.
async fn read_body(
    body: Body,
    declared: Option<u64>,
    limit: usize,
    state: &AppState,
    share: &mut BodyShare,
) -> Result<Bytes, BodyError> {
    let limits = &state.ingest_limits;
    let mut stream = body.into_data_stream();
    // Room for what was declared (already budgeted), so the buffer never doubles past it.
    let mut buffer = BytesMut::with_capacity(declared.map_or(0, |len| len as usize).min(limit));
    let deadline = tokio::time::Instant::now() + limits.body_total;
    loop {
        let pause_ends = tokio::time::Instant::now() + limits.body_idle;
        let next = tokio::time::timeout_at(deadline.min(pause_ends), stream.next()).await;
        let Some(chunk) = next.map_err(|_| BodyError::TooSlow)? else {
            break;
        };
        let chunk = chunk.map_err(BodyError::Broken)?;
        if buffer.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        state
            .memory
            .cover_growing(share, buffer.len() + chunk.len())
            .map_err(|_| BodyError::OverBudget)?;
        buffer.extend_from_slice(&chunk);
    }
    Ok(buffer.freeze())
}
