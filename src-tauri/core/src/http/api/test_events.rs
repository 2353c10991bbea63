//! Test events: the bundled samples, and new deliveries made from them or from captures.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use bytes::Bytes;

use crate::error::Error;
use crate::http::state::AppState;

use crate::store::endpoints::{self};
use crate::store::events;

use super::answer::{ApiError, ApiResult, json_body};
use super::views::{Template, TemplateList, TestEventAnswer, TestEventRequest};

/// The bundled sample deliveries a test event can be made from.
pub(super) async fn list_templates() -> Json<TemplateList> {
    let templates = crate::delivery::synth::TEMPLATES
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
            Template {
                event_type,
                name: t.name.to_string(),
            }
        })
        .collect();
    Json(TemplateList { templates })
}

/// `{"template": NAME | "event": ID, "endpoint"?, "email"?, "tag"?, "amount"?,
/// "set"?: {path: value}}`: a new delivery made from a sample or a captured event, sent
/// through the webhook listener like any other (signed when the endpoint has a secret).
pub(super) async fn send_test_event(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> ApiResult<Json<TestEventAnswer>> {
    let wanted: TestEventRequest = json_body(&body)?;
    let endpoint_id = wanted.endpoint.clone();
    let endpoint = state
        .store
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
                .store
                .read(move |conn| events::get_event(conn, &id))
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
        .post(state.public.webhook_url(&endpoint))
        .body(body);
    for (name, value) in &headers {
        if !crate::store::forwards::NOT_FORWARDED.contains(&name.to_ascii_lowercase().as_str()) {
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
    Ok(Json(TestEventAnswer { id, status }))
}
