//! The UI/API listener (loopback only): the UI page, the JSON API, the live stream and
//! exports, a module per resource. Every API route needs the install's API token (bearer header or the cookie set
//! when the UI URL is opened); every route refuses foreign `Host` and `Origin` headers so a
//! web page cannot reach it through DNS rebinding or cross-site requests.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{delete, get, post};
use serde::Deserialize;

use crate::error::Error;
use crate::http::state::{AppState, Handlers};
use crate::http::ui_assets;
use crate::tokens::tokens_match;
use answer::{ApiError, refuse};

pub(crate) mod answer;
mod contacts;
mod diff;
mod endpoints;
mod events;
mod export;
mod follow;
mod health;
mod import;
mod insights;
mod replay;
mod retention;
mod status;
mod stream;
mod systeme;
mod test_events;
mod tunnel;
pub mod views;

pub fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/status", get(status::status))
        .route("/events", get(events::list_events))
        .route("/events/{id}", get(events::get_event))
        .route("/events/{id}/raw", get(events::get_raw_body))
        .route("/events/{id}/forward", get(events::get_forward_answer))
        .route("/events/{id}/previous", get(diff::previous_event))
        .route("/diff", get(diff::diff_events))
        .route("/events/{id}/replay", post(replay::replay_event))
        .route("/events/{id}/replays", get(replay::replay_history))
        .route("/contacts/{email}/replay", post(replay::replay_contact))
        .route("/replays", post(replay::replay_selection))
        .route("/contacts", get(contacts::list_contacts))
        .route(
            "/contacts/{email}",
            get(contacts::get_contact_card).delete(contacts::forget_contact),
        )
        .route("/contacts/{email}/erasure", get(contacts::erasure_preview))
        .route(
            "/retention",
            get(retention::get_retention).put(retention::put_retention),
        )
        .route("/retention/preview", post(retention::preview_retention))
        .route("/shapes", get(insights::list_shapes))
        .route("/shapes/{event_type}", get(insights::get_shape))
        .route("/funnels", get(insights::funnel_report))
        .route("/templates", get(test_events::list_templates))
        .route("/test-events", post(test_events::send_test_event))
        .route(
            "/systeme",
            get(systeme::get_systeme).put(systeme::put_systeme),
        )
        .route("/systeme/webhooks", get(systeme::list_systeme_webhooks))
        .route(
            "/endpoints/{id}/systeme",
            post(systeme::register_with_systeme),
        )
        .route("/stream", get(stream::live_stream))
        .route("/health", get(health::get_health))
        .route("/health/probe", post(health::probe_now))
        .route("/alerts", get(health::list_alerts))
        .route("/alerts/acknowledge", post(health::acknowledge_alerts))
        .route(
            "/alert-rules",
            get(health::list_rules).post(health::add_rule),
        )
        .route("/alert-rules/{id}", delete(health::delete_rule))
        .route("/tunnel", get(tunnel::get_tunnel).put(tunnel::put_tunnel))
        .route(
            "/follow",
            get(follow::get_follow)
                .put(follow::put_follow)
                .delete(follow::stop_following),
        )
        .route("/export", get(export::export_events))
        .route("/import", post(import::import_events))
        .route(
            "/endpoints",
            get(endpoints::list_endpoints).post(endpoints::create_endpoint),
        )
        .route(
            "/endpoints/{id}",
            axum::routing::patch(endpoints::change_endpoint).delete(endpoints::delete_endpoint),
        )
        .fallback(|| async { ApiError(Error::NotFound("no such API route".into())) })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            read_what_was_acknowledged,
        ))
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
        .with_state(Handlers(state))
}

/// Reads include every delivery acknowledged before them: they wait (briefly) for the
/// indexer to derive what was committed. The live stream does not wait: it is told.
async fn read_what_was_acknowledged(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() == axum::http::Method::GET && !request.uri().path().ends_with("/stream") {
        state
            .store
            .caught_up(std::time::Duration::from_secs(2))
            .await;
    }
    next.run(request).await
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
        .access
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
            .access
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
        .or_else(|| cookie_token(request.headers(), &state.access.cookie_name));
    match presented {
        Some(token) if tokens_match(token, &state.access.api_token) => next.run(request).await,
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
    if !tokens_match(&token, &state.access.api_token) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this link's token is wrong or out of date: open the UI link printed by `hookscope serve`",
        );
    }
    let cookie = format!(
        "{}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age=31536000",
        state.access.cookie_name, state.access.api_token
    );
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("token is hex"),
    );
    response
}
