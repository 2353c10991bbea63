//! The UI/API listener (loopback only): the UI page, the JSON API, the live stream and
//! exports. Every API route needs the install's API token (bearer header or the cookie set
//! when the UI URL is opened); every route refuses foreign `Host` and `Origin` headers so a
//! web page cannot reach it through DNS rebinding or cross-site requests.

use std::convert::Infallible;
use std::io::Write;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use futures_util::{Stream, StreamExt, stream};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::{BroadcastStream, ReceiverStream, WatchStream};

use crate::app::AppState;
use crate::error::Error;
use crate::exchange::event_json::{Layout, write_event};
use crate::exchange::export::{self, Format};
use crate::http::ui_assets;
use crate::store::cards;
use crate::store::db;
use crate::store::endpoints::{self, Endpoint};
use crate::store::funnels;
use crate::store::queries::{self, ContactFilter, EventFilter};
use crate::store::shapes;
use crate::systeme;
use crate::tokens::tokens_match;
use crate::tunnel::TunnelChoice;

pub fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/status", get(status))
        .route("/events", get(list_events))
        .route("/events/{id}", get(get_event))
        .route("/events/{id}/raw", get(get_raw_body))
        .route("/events/{id}/forward", get(get_forward_answer))
        .route("/events/{id}/replay", post(replay_event))
        .route("/events/{id}/replays", get(replay_history))
        .route("/contacts/{email}/replay", post(replay_contact))
        .route("/replays", post(replay_selection))
        .route("/contacts", get(list_contacts))
        .route("/contacts/{email}", get(get_contact_card))
        .route("/shapes", get(list_shapes))
        .route("/shapes/{event_type}", get(get_shape))
        .route("/funnels", get(funnel_report))
        .route("/templates", get(list_templates))
        .route("/test-events", post(send_test_event))
        .route("/systeme", get(get_systeme).put(put_systeme))
        .route("/systeme/webhooks", get(list_systeme_webhooks))
        .route("/endpoints/{id}/systeme", post(register_with_systeme))
        .route("/stream", get(live_stream))
        .route("/tunnel", get(get_tunnel).put(put_tunnel))
        .route("/export", get(export_events))
        .route("/endpoints", get(list_endpoints).post(create_endpoint))
        .route(
            "/endpoints/{id}",
            axum::routing::patch(change_endpoint).delete(delete_endpoint),
        )
        .fallback(|| async { ApiError(Error::NotFound("no such API route".into())) })
        // `layer`, not `route_layer`: without the token, not even which routes exist.
        .layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .nest("/api", api)
        .route("/", get(index))
        .fallback(ui_assets::serve)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            same_origin_only,
        ))
        .layer(middleware::from_fn(ui_assets::security_headers))
        .with_state(state)
}

// ---- errors ---------------------------------------------------------------------------

/// Errors cross to the UI as `{"code", "message"}`; the UI branches on `code`.
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        ApiError(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self.0 {
            Error::Invalid(_) | Error::Json(_) => StatusCode::BAD_REQUEST,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self.0, "API request failed");
        }
        let body = json!({"code": self.0.code(), "message": self.0.to_string()});
        (status, Json(body)).into_response()
    }
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"code": code, "message": message}))).into_response()
}

type ApiResult<T> = Result<T, ApiError>;

/// `Query` whose rejection speaks the API's `{code, message}`.
pub struct ApiQuery<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(|rejection| ApiError(Error::Invalid(rejection.body_text())))
    }
}

/// A JSON request body, refused as `{code: "invalid_json", ...}` when it does not parse.
fn json_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(bytes).map_err(|e| ApiError(Error::Json(e)))
}

// ---- guards ---------------------------------------------------------------------------

/// DNS rebinding and cross-site requests: only our own `Host` and `Origin` get through.
async fn same_origin_only(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !state
        .ui_hosts
        .iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(host))
    {
        return refuse(
            StatusCode::FORBIDDEN,
            "foreign_host",
            "this address only answers requests for its own host name",
        );
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let own = state
            .ui_hosts
            .iter()
            .any(|allowed| origin.eq_ignore_ascii_case(&format!("http://{allowed}")));
        if !own {
            return refuse(
                StatusCode::FORBIDDEN,
                "foreign_origin",
                "requests from other web pages are refused",
            );
        }
    }
    next.run(request).await
}

async fn require_token(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let presented = bearer_token(request.headers())
        .or_else(|| cookie_token(request.headers(), &state.cookie_name));
    match presented {
        Some(token) if tokens_match(token, &state.api_token) => next.run(request).await,
        Some(_) => refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "wrong API token: open the UI link printed by `hookscope serve`",
        ),
        None => refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing API token: open the UI link printed by `hookscope serve`, or send `Authorization: Bearer <token>`",
        ),
    }
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn cookie_token<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

// ---- the page -------------------------------------------------------------------------

#[derive(Deserialize)]
struct IndexQuery {
    token: Option<String>,
}

/// `/?token=...` trades the token for a cookie and drops it from the address bar, so it
/// never lingers in history, bookmarks or screenshots.
async fn index(State(state): State<Arc<AppState>>, Query(query): Query<IndexQuery>) -> Response {
    let Some(token) = query.token else {
        return ui_assets::serve("/".parse().expect("a valid URI")).await;
    };
    if !tokens_match(&token, &state.api_token) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this link's token is wrong or out of date: open the UI link printed by `hookscope serve`",
        );
    }
    let cookie = format!(
        "{}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age=31536000",
        state.cookie_name, state.api_token
    );
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("token is hex"),
    );
    response
}

// ---- reads ----------------------------------------------------------------------------

async fn status(State(state): State<Arc<AppState>>) -> ApiResult<Json<serde_json::Value>> {
    let counts = state.read(queries::counts).await?;
    let default = state.default_endpoint().await?;
    Ok(Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "listening": true,
        "ingest": state.ingest_base,
        "webhook_url": state.webhook_url(&default),
        "default_endpoint": default.id,
        "max_body": state.max_body,
        "events": counts.events,
        "contacts": counts.contacts,
        "tunnel": tunnel_view(&state, &default),
        "notices": state.notices,
        // Deliveries refused since the last one stored (a full disk): null while all is well.
        "store": state.writer.trouble(),
        // SQLite's own allocations (page caches, statements): where memory goes as the store grows.
        "sqlite_memory_bytes": sqlite_memory_used(),
    })))
}

fn sqlite_memory_used() -> i64 {
    // SAFETY: a read of SQLite's global allocation counter; no arguments, no state.
    unsafe { rusqlite::ffi::sqlite3_memory_used() }
}

// ---- tunnel ---------------------------------------------------------------------------

/// The tunnel's status plus the default endpoint's public webhook URL.
fn tunnel_view(state: &AppState, default: &Endpoint) -> serde_json::Value {
    let status = state.tunnels.status();
    let mut view = serde_json::to_value(&status).expect("the tunnel status serialises");
    view["webhook_url"] = json!(state.public_webhook_url(default));
    view["previous_webhook_url"] = json!(
        status
            .previous_url
            .as_ref()
            .map(|base| format!("{base}/h/{}", default.token))
    );
    view["insecure"] = json!(status.insecure());
    view["ngrok_authtoken_set"] = json!(state.tunnels.has_ngrok_authtoken());
    view["proxy_listener"] = json!(state.proxy_base);
    view
}

async fn get_tunnel(State(state): State<Arc<AppState>>) -> ApiResult<Json<serde_json::Value>> {
    let default = state.default_endpoint().await?;
    Ok(Json(tunnel_view(&state, &default)))
}

#[derive(Deserialize)]
struct TunnelBody {
    tunnel: String,
    /// Stored locally for ngrok; `""` forgets it.
    #[serde(default)]
    ngrok_authtoken: Option<String>,
}

/// Switches the tunnel (`{"tunnel": "cloudflared" | "ngrok[:DOMAIN]" | "bore[:HOST]" |
/// "manual:URL" | "off", "ngrok_authtoken"?}`) and remembers the choice.
async fn put_tunnel(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let body: TunnelBody = json_body(&body)?;
    let choice: TunnelChoice = body.tunnel.parse().map_err(Error::Invalid)?;
    state.choose_tunnel(choice, body.ngrok_authtoken).await?;
    let default = state.default_endpoint().await?;
    Ok(Json(tunnel_view(&state, &default)))
}

async fn list_events(
    State(state): State<Arc<AppState>>,
    ApiQuery(filter): ApiQuery<EventFilter>,
) -> ApiResult<Json<queries::EventPage>> {
    Ok(Json(
        state
            .read(move |conn| queries::list_events(conn, &filter))
            .await?,
    ))
}

async fn get_event(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let inflate_limit = state.max_body;
    let event = state
        .read(move |conn| queries::get_event(conn, &id))
        .await?;
    let mut out = Vec::with_capacity(event.body.len() + 1024);
    write_event(
        &mut out,
        &event.meta,
        event.body_kind,
        &event.body,
        Layout::Document,
        inflate_limit,
    )
    .map_err(Error::Io)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], out).into_response())
}

/// The body exactly as it arrived, for the Raw view and "copy as cURL". Served as an
/// attachment of opaque type so no browser renders it.
async fn get_raw_body(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let event = state
        .read(move |conn| queries::get_event(conn, &id))
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CONTENT_DISPOSITION, "attachment"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        event.body,
    )
        .into_response())
}

/// What the forward target last answered: `{"status", "headers", "body_text"|"body_base64"}`.
async fn get_forward_answer(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let wanted = id.clone();
    let crate::delivery::forward::TargetAnswer {
        status,
        headers,
        body,
    } = state
        .read(move |conn| crate::delivery::forward::last_answer(conn, &wanted))
        .await?
        .ok_or_else(|| Error::NotFound(format!("event {id} was not forwarded")))?;
    let headers: serde_json::Value = headers
        .and_then(|h| serde_json::from_str(&h).ok())
        .unwrap_or(serde_json::Value::Null);
    let mut view = json!({"status": status, "headers": headers});
    match body.map(String::from_utf8) {
        Some(Ok(text)) => view["body_text"] = json!(text),
        Some(Err(bytes)) => {
            view["body_base64"] = json!(base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                bytes.into_bytes()
            ))
        }
        None => {}
    }
    Ok(Json(view))
}

/// Sends the event again: `{"url"?, "resign"?, "body"?}` → the target's answer.
async fn replay_event(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<crate::delivery::replay::ReplayResult>> {
    let request: crate::delivery::replay::ReplayRequest =
        if body.iter().all(u8::is_ascii_whitespace) {
            Default::default()
        } else {
            json_body(&body)?
        };
    Ok(Json(replay_one(&state, id, request).await?))
}

async fn replay_one(
    state: &Arc<AppState>,
    id: String,
    request: crate::delivery::replay::ReplayRequest,
) -> ApiResult<crate::delivery::replay::ReplayResult> {
    let plan = state
        .read(move |conn| crate::delivery::replay::plan(conn, &id, &request))
        .await?;
    state.refuse_own_url("url", &plan.target)?;
    // Sent and recorded on a task of its own: a client that goes away meanwhile does not
    // leave a replay sent but missing from the history.
    let state = state.clone();
    let done = tokio::spawn(async move {
        let result = crate::delivery::replay::send(&plan).await;
        let kept = result.clone();
        state
            .writer
            .run(move |conn| crate::delivery::replay::record(conn, &plan, &kept))
            .await
            .map(|()| result)
    });
    Ok(done.await.map_err(|_| Error::ShuttingDown)??)
}

/// Most events one request replays (each may wait up to 30 s for its answer).
const MAX_TIMELINE_REPLAY: usize = 200;

/// A contact's whole timeline sent again, oldest first, one after the other (each waits
/// for the previous answer): `{"url"?, "resign"?}` → `{"replays": [...]}`.
async fn replay_contact(
    State(state): State<Arc<AppState>>,
    Path(email): Path<String>,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let request: crate::delivery::replay::ReplayRequest =
        if body.iter().all(u8::is_ascii_whitespace) {
            Default::default()
        } else {
            json_body(&body)?
        };
    if request.body.is_some() {
        return Err(ApiError(Error::Invalid(
            "body: edit one event at a time (POST /api/events/{id}/replay)".into(),
        )));
    }
    let ids = state
        .read(move |conn| crate::delivery::replay::contact_timeline(conn, &email))
        .await?;
    if ids.len() > MAX_TIMELINE_REPLAY {
        return Err(ApiError(Error::Invalid(format!(
            "this contact has {} events; replay at most {MAX_TIMELINE_REPLAY} at once (hookscope replay takes any number)",
            ids.len()
        ))));
    }
    Ok(Json(replay_in_order(&state, ids, request).await))
}

/// Events sent again one after the other; one that cannot be replayed says why and the
/// rest go on.
async fn replay_in_order(
    state: &Arc<AppState>,
    ids: Vec<String>,
    request: crate::delivery::replay::ReplayRequest,
) -> serde_json::Value {
    let mut results = Vec::with_capacity(ids.len());
    for id in ids {
        match replay_one(state, id.clone(), request.clone()).await {
            Ok(result) => results.push(json!(result)),
            Err(ApiError(error)) => {
                results.push(json!({"event_id": id, "error": error.to_string()}))
            }
        }
    }
    json!({ "replays": results })
}

/// A selection of events sent again in the order given: `{"ids": [...], "url"?,
/// "resign"?}` → `{"replays": [...]}`.
async fn replay_selection(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Selection {
        ids: Vec<String>,
        url: Option<String>,
        #[serde(default)]
        resign: bool,
    }
    let selection: Selection = json_body(&body)?;
    if selection.ids.is_empty() || selection.ids.len() > MAX_TIMELINE_REPLAY {
        return Err(ApiError(Error::Invalid(format!(
            "ids: give 1 to {MAX_TIMELINE_REPLAY} event ids"
        ))));
    }
    let request = crate::delivery::replay::ReplayRequest {
        url: selection.url,
        resign: selection.resign,
        body: None,
    };
    Ok(Json(replay_in_order(&state, selection.ids, request).await))
}

async fn replay_history(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let replays = state
        .read(move |conn| crate::delivery::replay::history(conn, &id))
        .await?;
    Ok(Json(json!({ "replays": replays })))
}

async fn list_contacts(
    State(state): State<Arc<AppState>>,
    ApiQuery(filter): ApiQuery<ContactFilter>,
) -> ApiResult<Json<queries::ContactPage>> {
    Ok(Json(
        state
            .read(move |conn| queries::list_contacts(conn, &filter))
            .await?,
    ))
}

/// A contact with its card: state derived from its events.
async fn get_contact_card(
    State(state): State<Arc<AppState>>,
    Path(email): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let (contact, card) = state
        .read(move |conn| {
            let contact = queries::get_contact(conn, &email)?;
            let card = cards::current(conn, &contact.email)?;
            Ok((contact, card))
        })
        .await?;
    Ok(Json(json!({"contact": contact, "card": card})))
}

/// Event types whose shape Hookscope has learned, with how many deliveries drifted.
async fn list_shapes(State(state): State<Arc<AppState>>) -> ApiResult<Json<serde_json::Value>> {
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
async fn get_shape(
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

async fn funnel_report(
    State(state): State<Arc<AppState>>,
    ApiQuery(filter): ApiQuery<funnels::FunnelFilter>,
) -> ApiResult<Json<funnels::FunnelReport>> {
    Ok(Json(
        state
            .read(move |conn| funnels::report(conn, &filter))
            .await?,
    ))
}

// ---- synthetic deliveries ------------------------------------------------------------

/// The bundled sample deliveries a test event can be made from.
async fn list_templates() -> Json<serde_json::Value> {
    let templates: Vec<_> = crate::delivery::synth::TEMPLATES
        .iter()
        .map(|t| {
            let headers = t.headers();
            let event_type = crate::capture::decode::header(&headers, "x-webhook-event")
                .map(str::to_string)
                .or_else(|| {
                    serde_json::from_str::<serde_json::Value>(t.body)
                        .ok()
                        .and_then(|b| b["type"].as_str().map(str::to_string))
                });
            json!({"name": t.name, "event_type": event_type})
        })
        .collect();
    Json(json!({ "templates": templates }))
}

/// `{"template": NAME | "event": ID, "endpoint"?, "email"?, "tag"?, "amount"?,
/// "set"?: {path: value}}`: a new delivery made from a sample or a captured event, sent
/// through the webhook listener like any other (signed when the endpoint has a secret).
async fn send_test_event(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct TestEvent {
        template: Option<String>,
        event: Option<String>,
        endpoint: Option<String>,
        email: Option<String>,
        tag: Option<String>,
        amount: Option<i64>,
        #[serde(default)]
        set: serde_json::Map<String, serde_json::Value>,
    }
    let wanted: TestEvent = json_body(&body)?;
    let endpoint_id = wanted.endpoint.clone();
    let endpoint = state
        .read(move |conn| match endpoint_id {
            Some(id) => endpoints::get(conn, &id),
            None => endpoints::list(conn)?
                .into_iter()
                .next()
                .ok_or_else(|| Error::NotFound("no endpoint".into())),
        })
        .await?;
    let (headers, body) = match (&wanted.template, &wanted.event) {
        (Some(name), None) => {
            let template = crate::delivery::synth::Template::find(name).ok_or_else(|| {
                Error::Invalid(format!(
                    "template: no sample named {name:?} (GET /api/templates)"
                ))
            })?;
            (template.headers(), template.body.as_bytes().to_vec())
        }
        (None, Some(id)) => {
            let id = id.clone();
            let event = state
                .read(move |conn| queries::get_event(conn, &id))
                .await?;
            let headers: Vec<(String, String)> =
                serde_json::from_str(event.meta.headers.get()).unwrap_or_default();
            (headers, event.body)
        }
        _ => {
            return Err(ApiError(Error::Invalid(
                "give a \"template\" (a sample) or an \"event\" (a captured one)".into(),
            )));
        }
    };
    let overrides = crate::delivery::synth::Overrides {
        email: wanted.email,
        tag: wanted.tag,
        amount: wanted.amount,
        set: wanted.set.into_iter().collect(),
    };
    let (headers, body) =
        crate::delivery::synth::build(headers, &body, &overrides, endpoint.secret.as_deref())?;
    let mut request = reqwest::Client::new()
        .post(state.webhook_url(&endpoint))
        .body(body);
    for (name, value) in &headers {
        if !crate::delivery::forward::NOT_FORWARDED.contains(&name.to_ascii_lowercase().as_str()) {
            request = request.header(name, value);
        }
    }
    let response = request
        .send()
        .await
        .map_err(|e| Error::Invalid(format!("the webhook listener did not answer: {e}")))?;
    let status = response.status().as_u16();
    let id = response
        .headers()
        .get("x-hookscope-event")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Ok(Json(json!({"id": id, "status": status})))
}

// ---- systeme.io account -------------------------------------------------------------

async fn systeme_view(state: &AppState) -> ApiResult<serde_json::Value> {
    let key = state
        .read(|conn| db::get_setting(conn, systeme::API_KEY_SETTING))
        .await?;
    Ok(json!({"api_key_set": key.is_some(), "events": systeme::EVENTS}))
}

/// Whether an API key is stored (never the key) and the events a webhook can carry.
async fn get_systeme(State(state): State<Arc<AppState>>) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(systeme_view(&state).await?))
}

/// Stores (`{"api_key": "..."}`) or forgets (`null`) the systeme.io API key.
async fn put_systeme(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    #[derive(Deserialize)]
    struct Change {
        api_key: Option<String>,
    }
    let change: Change = json_body(&body)?;
    let key = change.api_key.map(|k| k.trim().to_string());
    if key
        .as_deref()
        .is_some_and(|k| k.is_empty() || k.len() > 500)
    {
        return Err(ApiError(Error::Invalid(
            "api_key: paste the key from systeme.io → Settings → Public API keys, or null to forget it".into(),
        )));
    }
    state
        .writer
        .run(move |conn| match key {
            Some(key) => db::put_setting(conn, systeme::API_KEY_SETTING, &key),
            None => db::delete_setting(conn, systeme::API_KEY_SETTING),
        })
        .await?;
    Ok(Json(systeme_view(&state).await?))
}

/// The account's Settings webhooks, each with the Hookscope endpoint it points at.
async fn list_systeme_webhooks(
    State(state): State<Arc<AppState>>,
) -> ApiResult<Json<serde_json::Value>> {
    let (key, endpoints) = state
        .read(|conn| {
            Ok((
                db::get_setting(conn, systeme::API_KEY_SETTING)?,
                endpoints::list(conn)?,
            ))
        })
        .await?;
    let key = key.ok_or_else(|| Error::Invalid("set your systeme.io API key first".into()))?;
    let client = systeme::Client::new(state.systeme_api.as_deref(), &key)?;
    let webhooks: Vec<_> = client
        .list()
        .await?
        .into_iter()
        .map(|w| {
            let endpoint = endpoints
                .iter()
                .find(|e| systeme::points_at(&w.url, &e.token))
                .map(|e| e.id.clone());
            json!({"id": w.id, "name": w.name, "url": w.url, "subscriptions": w.subscriptions,
                   "active": w.active, "endpoint": endpoint})
        })
        .collect();
    Ok(Json(json!({"webhooks": webhooks})))
}

/// Points the endpoint's systeme.io Settings webhook at its current public URL:
/// `{"events"?: [...]}` → `{"action": "created"|"updated"|"unchanged", "webhook",
/// "previous_url", "secret_stored"}`.
async fn register_with_systeme(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    #[derive(Deserialize, Default)]
    struct Choice {
        events: Option<Vec<String>>,
    }
    let choice: Choice = if body.iter().all(u8::is_ascii_whitespace) {
        Choice::default()
    } else {
        json_body(&body)?
    };
    let registration = state.register_with_systeme(id, choice.events).await?;
    let mut view = serde_json::to_value(&registration).expect("a registration serialises");
    view["secret_stored"] = json!(registration.new_secret.is_some());
    Ok(Json(view))
}

// ---- live stream ----------------------------------------------------------------------

/// One `captured` event per committed delivery (its summary, no body). A client too slow
/// to keep up is never waited for: it gets `resync` and should reload its lists.
async fn live_stream(
    State(state): State<Arc<AppState>>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let updates = BroadcastStream::new(state.published.subscribe()).map(|item| {
        Ok(match item {
            Ok(meta) => SseEvent::default()
                .event("captured")
                .json_data(&*meta)
                .unwrap_or_else(|_| SseEvent::default().event("resync").data("{}")),
            Err(BroadcastStreamRecvError::Lagged(missed)) => SseEvent::default()
                .event("resync")
                .data(json!({"missed": missed}).to_string()),
        })
    });
    // Each change of the tunnel (state, URL) as a `tunnel` event with the full view.
    let tunnel_state = state.clone();
    let tunnel = WatchStream::from_changes(state.tunnels.subscribe()).then(move |_| {
        let state = tunnel_state.clone();
        async move {
            let event = match state.default_endpoint().await {
                Ok(default) => SseEvent::default()
                    .event("tunnel")
                    .json_data(tunnel_view(&state, &default))
                    .unwrap_or_else(|_| SseEvent::default().event("resync").data("{}")),
                Err(_) => SseEvent::default().event("resync").data("{}"),
            };
            Ok(event)
        }
    });
    let forwarded =
        BroadcastStream::new(state.forwarded.subscribe()).filter_map(|item| async move {
            // A missed forward result shows at the next reload; nothing to resync for.
            let update = item.ok()?;
            Some(Ok(SseEvent::default()
                .event("forwarded")
                .json_data(&*update)
                .unwrap_or_else(|_| {
                    SseEvent::default().event("resync").data("{}")
                })))
        });
    // The store's trouble (deliveries refused: a full disk) as `store` events: the current
    // state first, then each change, so a window that connects during trouble is told.
    let store = WatchStream::new(state.writer.watch_trouble()).map(|trouble| {
        Ok(SseEvent::default()
            .event("store")
            .json_data(&trouble)
            .unwrap_or_else(|_| SseEvent::default().event("resync").data("{}")))
    });
    let ready = stream::once(async { Ok(SseEvent::default().event("ready").data("{}")) });
    let stream = ready
        .chain(stream::select(
            stream::select(updates, tunnel),
            stream::select(forwarded, store),
        ))
        .take_until(state.shutdown.clone().cancelled_owned());
    Sse::new(stream).keep_alive(KeepAlive::default())
}

// ---- export ---------------------------------------------------------------------------

#[derive(Deserialize)]
struct FormatQuery {
    format: Option<String>,
}

async fn export_events(
    State(state): State<Arc<AppState>>,
    ApiQuery(filter): ApiQuery<EventFilter>,
    ApiQuery(format): ApiQuery<FormatQuery>,
) -> ApiResult<Response> {
    let format: Format = format.format.as_deref().unwrap_or("json").parse()?;
    // Refuse a bad filter with a 400 now, not halfway through a download.
    let probe = EventFilter {
        limit: Some(1),
        before: None,
        ..filter.clone()
    };
    state
        .read(move |conn| queries::list_events(conn, &probe))
        .await?;

    let (chunks, body) = mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let pool = state.reads.clone();
    let inflate_limit = state.max_body;
    tokio::task::spawn_blocking(move || {
        let result = pool.get().map_err(Error::from).and_then(|conn| {
            let mut out =
                std::io::BufWriter::with_capacity(64 * 1024, ChannelWriter(chunks.clone()));
            export::export(&conn, &filter, format, &mut out, inflate_limit)
        });
        if let Err(error) = result {
            tracing::warn!(%error, "export interrupted");
            let _ = chunks.blocking_send(Err(std::io::Error::other(error.to_string())));
        }
    });
    let filename = format!(
        "hookscope-export-{}.{}",
        crate::timefmt::format_micros(crate::timefmt::now_micros())
            .get(..19)
            .unwrap_or("now")
            .replace(':', ""),
        format.extension()
    );
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        Body::from_stream(ReceiverStream::new(body)),
    )
        .into_response())
}

/// Hands export bytes to the response body; a client that went away stops the export.
struct ChannelWriter(mpsc::Sender<Result<Bytes, std::io::Error>>);

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(data)))
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::BrokenPipe, "download cancelled")
            })?;
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// ---- endpoints ------------------------------------------------------------------------

#[derive(serde::Serialize)]
struct EndpointView {
    #[serde(flatten)]
    endpoint: Endpoint,
    url: String,
    /// Through the tunnel, while it is up.
    public_url: Option<String>,
}

async fn list_endpoints(State(state): State<Arc<AppState>>) -> ApiResult<Json<serde_json::Value>> {
    let list = state.read(endpoints::list).await?;
    let views: Vec<EndpointView> = list
        .into_iter()
        .map(|endpoint| EndpointView {
            url: state.webhook_url(&endpoint),
            public_url: state.public_webhook_url(&endpoint),
            endpoint,
        })
        .collect();
    Ok(Json(json!({ "endpoints": views })))
}

#[derive(Deserialize)]
struct EndpointBody {
    name: String,
}

async fn create_endpoint(State(state): State<Arc<AppState>>, body: Bytes) -> ApiResult<Response> {
    let body: EndpointBody = json_body(&body)?;
    let endpoint = state
        .change_endpoints(move |conn| endpoints::create(conn, &body.name))
        .await?;
    let view = EndpointView {
        url: state.webhook_url(&endpoint),
        public_url: state.public_webhook_url(&endpoint),
        endpoint,
    };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// `PATCH /api/endpoints/{id}`: any of `name`, `secret` (a string sets it, `null` clears).
#[derive(Deserialize)]
struct EndpointPatch {
    name: Option<String>,
    /// Absent: unchanged. `null`: cleared.
    #[serde(default, deserialize_with = "present_or_null")]
    secret: Option<Option<String>>,
    /// Absent: unchanged. `null`: forwarding stops.
    #[serde(default, deserialize_with = "present_or_null")]
    forward_to: Option<Option<String>>,
    /// Absent: unchanged. `null`: back to a fast 200.
    #[serde(default, deserialize_with = "present_or_null_response")]
    response: Option<Option<endpoints::CannedResponse>>,
}

fn present_or_null_response<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<endpoints::CannedResponse>>, D::Error> {
    Option::<endpoints::CannedResponse>::deserialize(deserializer).map(Some)
}

fn present_or_null<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

async fn change_endpoint(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<EndpointView>> {
    let patch: EndpointPatch = json_body(&body)?;
    if let Some(Some(target)) = &patch.forward_to {
        state.refuse_own_url("forward_to", target)?;
    }
    if patch.name.is_none()
        && patch.secret.is_none()
        && patch.forward_to.is_none()
        && patch.response.is_none()
    {
        return Err(ApiError(Error::Invalid(
            "nothing to change: send \"name\", \"secret\", \"forward_to\" and/or \"response\""
                .into(),
        )));
    }
    // Checked before anything changes, so a bad answer does not leave half a change.
    if let Some(Some(response)) = &patch.response {
        response.check()?;
    }
    let endpoint = state
        .change_endpoints(move |conn| {
            if let Some(name) = &patch.name {
                endpoints::rename(conn, &id, name)?;
            }
            if let Some(target) = &patch.forward_to {
                endpoints::set_forward_to(conn, &id, target.as_deref())?;
            }
            if let Some(response) = &patch.response {
                endpoints::set_response(conn, &id, response.as_ref())?;
            }
            match &patch.secret {
                Some(secret) => endpoints::set_secret(conn, &id, secret.as_deref()),
                None => endpoints::get(conn, &id),
            }
        })
        .await?;
    Ok(Json(EndpointView {
        url: state.webhook_url(&endpoint),
        public_url: state.public_webhook_url(&endpoint),
        endpoint,
    }))
}

async fn delete_endpoint(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .change_endpoints(move |conn| endpoints::delete(conn, &id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
