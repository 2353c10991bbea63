//! Forwarding: an endpoint can pass every delivery on to the user's own handler (say
//! `http://localhost:3000/webhooks/systeme`) with the same method, sub-path, query,
//! headers (hop-by-hop ones aside) and exact body bytes. The delivery is stored and
//! acknowledged first: the forward is a row written in the same transaction, worked
//! through here, retried with backoff when the target fails, and its answer kept.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::OptionalExtension;
use serde::Serialize;
use tokio::task::JoinSet;

use crate::error::Result;
use crate::server::AppState;
use crate::timefmt::now_micros;

/// How much of a target's answer is kept.
pub const RESPONSE_LIMIT: usize = 64 * 1024;
/// Headers that belong to one connection, not to the message (RFC 9110 §7.6.1), and those
/// the client sets itself.
pub const NOT_FORWARDED: [&str; 11] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];
/// Targets worked on at once; one delivery at a time per target, so a handler sees them
/// in the order they became due.
const MAX_TARGETS_AT_ONCE: usize = 8;

/// When to give up on a target and how long to wait before trying again.
#[derive(Debug, Clone)]
pub struct ForwardPolicy {
    /// Wait before the second attempt; doubled for each next one.
    pub first_retry: Duration,
    /// Attempts in all before the forward is marked failed.
    pub attempts: i64,
    /// Longest wait for a target's answer.
    pub timeout: Duration,
}

impl Default for ForwardPolicy {
    fn default() -> Self {
        ForwardPolicy {
            first_retry: Duration::from_secs(1),
            attempts: 6,
            timeout: Duration::from_secs(10),
        }
    }
}

/// The forward of one event, as event JSON shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ForwardView {
    pub target: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: i64,
    pub status: Option<i64>,
    pub duration_ms: Option<i64>,
    pub error: Option<String>,
}

/// A forward changed: for the live stream.
#[derive(Debug, Clone, Serialize)]
pub struct ForwardUpdate {
    pub id: String,
    pub forward: ForwardView,
}

/// `base` + the delivery's sub-path (what follows `/h/TOKEN`) + its query (after any query
/// `base` has of its own).
pub fn target_url(base: &str, path: &str, token: &str, query: Option<&str>) -> String {
    let suffix = path
        .strip_prefix("/h/")
        .and_then(|rest| rest.strip_prefix(token))
        .unwrap_or("");
    let Ok(mut url) = url::Url::parse(base) else {
        return base.to_string();
    };
    let joined = format!("{}{suffix}", url.path().trim_end_matches('/'));
    url.set_path(if joined.is_empty() { "/" } else { &joined });
    let query = match (url.query(), query.filter(|q| !q.is_empty())) {
        (Some(own), Some(theirs)) => Some(format!("{own}&{theirs}")),
        (own, theirs) => own.or(theirs).map(str::to_string),
    };
    url.set_query(query.as_deref());
    url.to_string()
}

struct Due {
    seq: i64,
    event_id: String,
    target: String,
    attempts: i64,
    method: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

struct Outcome {
    status: Option<i64>,
    headers: Option<String>,
    body: Option<Vec<u8>>,
    duration_ms: i64,
    error: Option<String>,
}

/// Starts the forwarder; it stops with the server.
pub fn start(state: Arc<AppState>) {
    tokio::spawn(async move {
        let policy = state.forward_policy.clone();
        let client = match reqwest::Client::builder()
            .timeout(policy.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
        {
            Ok(client) => client,
            Err(error) => {
                tracing::error!(%error, "forwarding cannot start");
                return;
            }
        };
        let mut wake = state.published.subscribe();
        let mut running: JoinSet<String> = JoinSet::new();
        let mut busy: HashSet<String> = HashSet::new();
        loop {
            if busy.len() < MAX_TARGETS_AT_ONCE {
                let taken: Vec<String> = busy.iter().cloned().collect();
                match state.read(move |conn| next_due(conn, &taken)).await {
                    Ok(due) => {
                        for due in due.into_iter().take(MAX_TARGETS_AT_ONCE - busy.len()) {
                            busy.insert(due.target.clone());
                            let (state, client, policy) =
                                (state.clone(), client.clone(), policy.clone());
                            running.spawn(async move {
                                let target = due.target.clone();
                                let outcome = send(&client, &due).await;
                                if let Err(error) = record(&state, &policy, due, outcome).await {
                                    tracing::warn!(%error, "a forward's result was not stored");
                                }
                                target
                            });
                        }
                    }
                    Err(error) => tracing::warn!(%error, "cannot read due forwards"),
                }
            }
            let nap = if busy.is_empty() {
                Duration::from_millis(1000)
            } else {
                Duration::from_millis(200)
            };
            tokio::select! {
                _ = state.shutdown.cancelled() => return,
                Some(done) = running.join_next() => {
                    if let Ok(target) = done {
                        busy.remove(&target);
                    }
                }
                woke = wake.recv() => {
                    if matches!(woke, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                        return;
                    }
                }
                _ = tokio::time::sleep(nap) => {}
            }
        }
    });
}

/// The earliest due forward of each target not being worked on.
fn next_due(conn: &rusqlite::Connection, busy: &[String]) -> Result<Vec<Due>> {
    let mut stmt = conn.prepare_cached(
        "SELECT f.event_seq, f.target, f.attempts, e.id, e.method, e.headers, e.body
         FROM forwards f JOIN events e ON e.seq = f.event_seq
         WHERE f.state = 'pending' AND f.next_at <= ?1
         ORDER BY f.next_at, f.event_seq LIMIT 64",
    )?;
    let mut rows = stmt.query([now_micros()])?;
    let mut due: Vec<Due> = Vec::new();
    while let Some(row) = rows.next()? {
        let target: String = row.get(1)?;
        if busy.contains(&target) || due.iter().any(|d| d.target == target) {
            continue;
        }
        let headers: String = row.get(5)?;
        due.push(Due {
            seq: row.get(0)?,
            target,
            attempts: row.get(2)?,
            event_id: row.get(3)?,
            method: row.get(4)?,
            headers: serde_json::from_str(&headers).unwrap_or_default(),
            body: row.get(6)?,
        });
    }
    Ok(due)
}

async fn send(client: &reqwest::Client, due: &Due) -> Outcome {
    let started = Instant::now();
    let method =
        reqwest::Method::from_bytes(due.method.as_bytes()).unwrap_or(reqwest::Method::POST);
    let mut request = client.request(method, &due.target);
    for (name, value) in &due.headers {
        if !NOT_FORWARDED.contains(&name.to_ascii_lowercase().as_str()) {
            request = request.header(name, value);
        }
    }
    let result = request.body(due.body.clone()).send().await;
    let elapsed = |started: Instant| started.elapsed().as_millis() as i64;
    match result {
        Ok(response) => {
            let status = i64::from(response.status().as_u16());
            let headers: Vec<(String, String)> = response
                .headers()
                .iter()
                .map(|(n, v)| {
                    (
                        n.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let (body, error) = read_limited(response).await;
            Outcome {
                status: Some(status),
                headers: serde_json::to_string(&headers).ok(),
                body: Some(body),
                duration_ms: elapsed(started),
                error: error.or_else(|| {
                    (!(200..300).contains(&status)).then(|| format!("the target answered {status}"))
                }),
            }
        }
        Err(error) => Outcome {
            status: None,
            headers: None,
            body: None,
            duration_ms: elapsed(started),
            error: Some(if error.is_timeout() {
                "the target did not answer in time".to_string()
            } else if error.is_connect() {
                format!(
                    "the target refused the connection: is it running? ({})",
                    error.without_url()
                )
            } else {
                format!("{}", error.without_url())
            }),
        },
    }
}

/// The first [`RESPONSE_LIMIT`] bytes of the answer.
async fn read_limited(mut response: reqwest::Response) -> (Vec<u8>, Option<String>) {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = RESPONSE_LIMIT - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if body.len() >= RESPONSE_LIMIT {
                    return (body, None);
                }
            }
            Ok(None) => return (body, None),
            Err(error) => {
                return (
                    body,
                    Some(format!("the answer broke off: {}", error.without_url())),
                );
            }
        }
    }
}

async fn record(
    state: &AppState,
    policy: &ForwardPolicy,
    due: Due,
    outcome: Outcome,
) -> Result<()> {
    let attempts = due.attempts + 1;
    let delivered = outcome.error.is_none();
    let (forward_state, next_at) = if delivered {
        ("delivered", 0)
    } else if attempts >= policy.attempts {
        ("failed", 0)
    } else {
        let wait = policy.first_retry * 2u32.saturating_pow((attempts - 1) as u32);
        ("pending", now_micros() + wait.as_micros() as i64)
    };
    let view = ForwardView {
        target: due.target.clone(),
        state: forward_state.to_string(),
        attempts,
        status: outcome.status,
        duration_ms: Some(outcome.duration_ms),
        error: outcome.error.clone(),
    };
    let seq = due.seq;
    state
        .writer
        .run(move |conn| {
            conn.execute(
                "UPDATE forwards SET state = ?2, attempts = ?3, next_at = ?4, status = ?5,
                    duration_ms = ?6, error = ?7, response_headers = ?8, response_body = ?9,
                    updated_at = ?10
                 WHERE event_seq = ?1",
                rusqlite::params![
                    seq,
                    forward_state,
                    attempts,
                    next_at,
                    outcome.status,
                    outcome.duration_ms,
                    outcome.error,
                    outcome.headers,
                    outcome.body,
                    now_micros(),
                ],
            )?;
            Ok(())
        })
        .await?;
    let _ = state.forwarded.send(Arc::new(ForwardUpdate {
        id: due.event_id,
        forward: view,
    }));
    Ok(())
}

/// What a forward target last answered.
pub struct TargetAnswer {
    pub status: Option<i64>,
    /// JSON list of `[name, value]`.
    pub headers: Option<String>,
    /// The first [`RESPONSE_LIMIT`] bytes.
    pub body: Option<Vec<u8>>,
}

/// The target's last answer to an event's forward; `None` when it was not forwarded.
pub fn last_answer(conn: &rusqlite::Connection, event_id: &str) -> Result<Option<TargetAnswer>> {
    Ok(conn
        .prepare_cached(
            "SELECT f.status, f.response_headers, f.response_body
             FROM forwards f JOIN events e ON e.seq = f.event_seq WHERE e.id = ?1",
        )?
        .query_row([event_id], |r| {
            Ok(TargetAnswer {
                status: r.get(0)?,
                headers: r.get(1)?,
                body: r.get(2)?,
            })
        })
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_gets_the_sub_path_and_both_queries() {
        assert_eq!(
            target_url(
                "http://localhost:3000/webhooks/systeme",
                "/h/tok/orders/1",
                "tok",
                Some("x=1")
            ),
            "http://localhost:3000/webhooks/systeme/orders/1?x=1"
        );
        assert_eq!(
            target_url("http://localhost:3000", "/h/tok", "tok", None),
            "http://localhost:3000/"
        );
        assert_eq!(
            target_url("https://h.example/in?key=abc", "/h/tok", "tok", Some("a=b")),
            "https://h.example/in?key=abc&a=b"
        );
    }
}
