//! Replay: a stored event sent again to the endpoint's forward target or any URL, as it
//! arrived, with its body edited, or re-signed with the endpoint's secret (a fresh
//! `X-Webhook-Signature` and a new attempt id, as systeme.io would send a new attempt).
//! Every replay and the target's answer is kept.

use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::capture::signature::{SIGNATURE_HEADER, sign};
use crate::delivery::forward::{answer_headers, read_limited, why_unanswered};
use crate::error::{Error, Result};
use crate::store::endpoints;
use crate::store::forwards::{NOT_FORWARDED, target_url};
use crate::timefmt::{format_micros, now_micros};

const TIMEOUT: Duration = Duration::from_secs(30);

/// What to send: `url` (else the endpoint's forward target), `resign`, `body` (else the
/// stored bytes).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    pub url: Option<String>,
    #[serde(default)]
    pub resign: bool,
    pub body: Option<String>,
}

/// A replay ready to send.
pub struct Plan {
    event_seq: i64,
    pub event_id: String,
    pub target: String,
    method: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    resigned: bool,
    edited: bool,
}

/// A replay and the target's answer.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct ReplayResult {
    pub event_id: String,
    pub at: String,
    pub target: String,
    pub resigned: bool,
    pub edited: bool,
    pub status: Option<i64>,
    pub duration_ms: i64,
    pub error: Option<String>,
    pub headers: Vec<(String, String)>,
    /// The answer's first 64 KiB, as text (lossy for binary answers).
    pub body: String,
}

pub fn plan(conn: &Connection, event_id: &str, request: &ReplayRequest) -> Result<Plan> {
    struct Stored {
        seq: i64,
        endpoint_id: String,
        method: String,
        path: String,
        headers: String,
        query: Option<String>,
        body: Vec<u8>,
    }
    let Some(Stored {
        seq,
        endpoint_id,
        method,
        path,
        headers,
        query,
        body: stored_body,
    }) = conn
        .prepare_cached(
            "SELECT seq, endpoint_id, method, path, headers, query, body FROM deliveries
             WHERE id = ?1",
        )?
        .query_row([event_id], |r| {
            Ok(Stored {
                seq: r.get(0)?,
                endpoint_id: r.get(1)?,
                method: r.get(2)?,
                path: r.get(3)?,
                headers: r.get(4)?,
                query: r.get(5)?,
                body: r.get(6)?,
            })
        })
        .optional()?
    else {
        return Err(Error::NotFound(format!("no event {event_id}")));
    };
    let endpoint = endpoints::get(conn, &endpoint_id).ok();
    let target = match (&request.url, &endpoint) {
        (Some(url), _) => {
            let parsed = url::Url::parse(url.trim())
                .map_err(|e| Error::Invalid(format!("url: {url:?} is not a URL ({e})")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(Error::Invalid(format!("url: {url:?} is not http(s)")));
            }
            parsed.to_string()
        }
        (None, Some(endpoint)) => match &endpoint.forward_to {
            Some(base) => {
                target_url(base, &path, &endpoint.token, query.as_deref()).ok_or_else(|| {
                    Error::Invalid(
                        "the event's sub-path leaves the forward target's path: give a url".into(),
                    )
                })?
            }
            None => {
                return Err(Error::Invalid(
                    "the endpoint forwards nowhere: give a url to replay to".into(),
                ));
            }
        },
        (None, None) => {
            return Err(Error::Invalid(
                "the event's endpoint is gone: give a url to replay to".into(),
            ));
        }
    };
    let edited = request.body.is_some();
    let body = request
        .body
        .clone()
        .map(String::into_bytes)
        .unwrap_or(stored_body);
    let mut headers: Vec<(String, String)> =
        serde_json::from_str::<Vec<(String, String)>>(&headers)
            .unwrap_or_default()
            .into_iter()
            .filter(|(name, _)| !NOT_FORWARDED.contains(&name.to_ascii_lowercase().as_str()))
            .collect();
    if request.resign {
        let secret = endpoint.and_then(|e| e.secret).ok_or_else(|| {
            Error::Invalid(
                "re-signing needs the endpoint's secret: set it first (systeme.io → Settings → Webhooks)"
                    .into(),
            )
        })?;
        let fresh = [
            (SIGNATURE_HEADER, sign(&body, &secret)),
            (
                "x-webhook-delivery-attempt-id",
                uuid::Uuid::now_v7().to_string(),
            ),
            (
                "x-webhook-delivery-attempt-timestamp",
                time::OffsetDateTime::now_utc()
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
            ),
        ];
        headers.retain(|(name, _)| !fresh.iter().any(|(f, _)| name.eq_ignore_ascii_case(f)));
        headers.extend(fresh.into_iter().map(|(n, v)| (n.to_string(), v)));
    }
    // Marked as this install's, so that one sent back here is not forwarded on.
    if let Some(install) =
        crate::store::settings::get_setting(conn, crate::store::settings::Setting::InstallId)?
    {
        headers.push((crate::store::forwards::LOOP_HEADER.to_string(), install));
    }
    Ok(Plan {
        event_seq: seq,
        event_id: event_id.to_string(),
        target,
        method,
        headers,
        body,
        resigned: request.resign,
        edited,
    })
}

/// Sends a planned replay; the answer, or why there was none.
pub async fn send(plan: &Plan) -> ReplayResult {
    let at = format_micros(now_micros());
    let started = Instant::now();
    // A client per replay: a shared one would keep connections tied to the runtime that
    // opened them (the CLI and each server run on their own).
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build();
    let method =
        reqwest::Method::from_bytes(plan.method.as_bytes()).unwrap_or(reqwest::Method::POST);
    let mut result = ReplayResult {
        event_id: plan.event_id.clone(),
        at,
        target: plan.target.clone(),
        resigned: plan.resigned,
        edited: plan.edited,
        status: None,
        duration_ms: 0,
        error: None,
        headers: Vec::new(),
        body: String::new(),
    };
    let client = match client {
        Ok(client) => client,
        Err(error) => {
            result.error = Some(format!("cannot send: {error}"));
            return result;
        }
    };
    let mut request = client.request(method, &plan.target);
    for (name, value) in &plan.headers {
        request = request.header(name, value);
    }
    match request.body(plan.body.clone()).send().await {
        Ok(response) => {
            result.status = Some(i64::from(response.status().as_u16()));
            result.headers = answer_headers(&response);
            let (body, broke_off) = read_limited(response).await;
            result.body = String::from_utf8_lossy(&body).into_owned();
            result.error = broke_off;
        }
        Err(error) => result.error = Some(why_unanswered(error)),
    }
    result.duration_ms = started.elapsed().as_millis() as i64;
    result
}

/// Keeps a replay in the event's history.
pub fn record(conn: &Connection, plan: &Plan, result: &ReplayResult) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO replays (event_seq, at, target, resigned, edited, status, duration_ms,
            error, response_headers, response_body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(rusqlite::params![
        plan.event_seq,
        now_micros(),
        result.target,
        result.resigned,
        result.edited,
        result.status,
        result.duration_ms,
        result.error,
        serde_json::to_string(&result.headers).ok(),
        result.body.as_bytes(),
    ])?;
    Ok(())
}

/// An event's replays, oldest first.
pub fn history(conn: &Connection, event_id: &str) -> Result<Vec<ReplayResult>> {
    let mut stmt = conn.prepare_cached(
        "SELECT r.at, r.target, r.resigned, r.edited, r.status, r.duration_ms, r.error,
                r.response_headers, r.response_body
         FROM replays r JOIN deliveries d ON d.seq = r.event_seq WHERE d.id = ?1
         ORDER BY r.at, r.id",
    )?;
    let rows = stmt.query_map([event_id], |r| {
        let headers: Option<String> = r.get(7)?;
        let body: Option<Vec<u8>> = r.get(8)?;
        Ok(ReplayResult {
            event_id: event_id.to_string(),
            at: format_micros(r.get(0)?),
            target: r.get(1)?,
            resigned: r.get(2)?,
            edited: r.get(3)?,
            status: r.get(4)?,
            duration_ms: r.get::<_, Option<i64>>(5)?.unwrap_or(0),
            error: r.get(6)?,
            headers: headers
                .and_then(|h| serde_json::from_str(&h).ok())
                .unwrap_or_default(),
            body: String::from_utf8_lossy(&body.unwrap_or_default()).into_owned(),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The ids of a contact's events, oldest first (to replay a whole timeline in order).
pub fn contact_timeline(conn: &Connection, email: &str) -> Result<Vec<String>> {
    let key = crate::capture::decode::normalise_email(email);
    let mut stmt = conn
        .prepare_cached("SELECT id FROM events WHERE contact_key = ?1 ORDER BY received_at, seq")?;
    let ids = stmt
        .query_map([&key], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    if ids.is_empty() {
        return Err(Error::NotFound(format!("no events for {key}")));
    }
    Ok(ids)
}
