//! The public URL: its status (also sent on the live stream) and switching tunnels.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use bytes::Bytes;
use serde::Deserialize;

use crate::error::Error;
use crate::http::state::AppState;

use crate::store::endpoints::Endpoint;
use crate::tunnel::TunnelChoice;

use super::answer::{ApiResult, json_body};
use super::views::TunnelView;

/// The tunnel's status plus the default endpoint's public webhook URL.
pub(super) fn tunnel_view(state: &AppState, default: &Endpoint) -> TunnelView {
    let status = state.public.tunnels.status();
    TunnelView {
        insecure: status.insecure(),
        ngrok_authtoken_set: state.public.tunnels.has_ngrok_authtoken(),
        previous_webhook_url: status
            .previous_url
            .as_ref()
            .map(|base| format!("{base}/h/{}", default.token)),
        proxy_listener: state.public.proxy_base.clone(),
        webhook_url: state.public.public_webhook_url(default),
        choice: status.choice,
        hint: status.hint,
        previous_url: status.previous_url,
        provider: status.provider,
        public_url: status.public_url,
        reason: status.reason,
        revision: status.revision,
        state: status.state,
    }
}

pub(super) async fn get_tunnel(State(state): State<Arc<AppState>>) -> ApiResult<Json<TunnelView>> {
    let default = state.store.default_endpoint()?;
    Ok(Json(tunnel_view(&state, &default)))
}

#[derive(Deserialize)]
pub(super) struct TunnelBody {
    tunnel: String,
    /// Stored locally for ngrok; `""` forgets it.
    #[serde(default)]
    ngrok_authtoken: Option<String>,
}

/// Switches the tunnel (`{"tunnel": "cloudflared" | "ngrok[:DOMAIN]" | "bore[:HOST]" |
/// "manual:URL" | "off", "ngrok_authtoken"?}`) and remembers the choice.
pub(super) async fn put_tunnel(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> ApiResult<Json<TunnelView>> {
    let body: TunnelBody = json_body(&body)?;
    let choice: TunnelChoice = body.tunnel.parse().map_err(Error::Invalid)?;
    state.public.choose(choice, body.ngrok_authtoken).await?;
    let default = state.store.default_endpoint()?;
    Ok(Json(tunnel_view(&state, &default)))
}
