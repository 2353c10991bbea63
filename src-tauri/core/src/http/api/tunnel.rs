//! The public URL: its status (also sent on the live stream) and switching tunnels.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use crate::error::Error;
use crate::http::state::AppState;

use crate::store::endpoints::Endpoint;
use crate::tunnel::TunnelChoice;

use super::answer::{ApiResult, json_body};

/// The tunnel's status plus the default endpoint's public webhook URL.
pub(super) fn tunnel_view(state: &AppState, default: &Endpoint) -> serde_json::Value {
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

pub(super) async fn get_tunnel(
    State(state): State<Arc<AppState>>,
) -> ApiResult<Json<serde_json::Value>> {
    let default = state.default_endpoint().await?;
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
) -> ApiResult<Json<serde_json::Value>> {
    let body: TunnelBody = json_body(&body)?;
    let choice: TunnelChoice = body.tunnel.parse().map_err(Error::Invalid)?;
    state.choose_tunnel(choice, body.ngrok_authtoken).await?;
    let default = state.default_endpoint().await?;
    Ok(Json(tunnel_view(&state, &default)))
}
