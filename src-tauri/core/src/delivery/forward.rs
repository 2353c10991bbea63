//! Forwarding: an endpoint can pass every delivery on to the user's own handler (say
//! `http://localhost:3000/webhooks/systeme`) with the same method, sub-path, query,
//! headers (hop-by-hop ones aside) and exact body bytes. The delivery is stored and
//! acknowledged first: the forward is a row written in the same transaction, worked
//! through here, retried with backoff when the target fails, and its answer kept.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::OptionalExtension;
use serde::Serialize;
use tokio::task::JoinSet;

use crate::app::AppState;
use crate::error::Result;
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
/// Sent with every forward and replay: this install's id. A delivery that comes back
/// carrying it (the target is this Hookscope, or leads back to it) is stored but not
/// forwarded again, so a loop ends after one turn. Other hops' ids are kept, as are all
/// headers, so a loop through several Hookscopes ends too.
pub const LOOP_HEADER: &str = "x-hookscope-forwarded-by";
/// What the event detail says of such a delivery's forward.
pub const LOOP_REFUSED: &str = "not forwarded: it came from this Hookscope's own forward or replay, so sending it on would loop (is the forward target this Hookscope's webhook URL?)";

/// Whether these headers say the delivery came from this install's forward or replay.
pub fn came_from(headers: &[(String, String)], install_id: &str) -> bool {
    headers.iter().any(|(name, value)| {
        name.eq_ignore_ascii_case(LOOP_HEADER) && value.split(',').any(|id| id.trim() == install_id)
    })
}

/// Targets worked on at once; one delivery at a time per target, so a handler sees them
/// in the order they became due.
const MAX_TARGETS_AT_ONCE: usize = 8;

/// When to give up on a target and how long to wait before trying again.
#[derive(Debug, Clone)]
pub struct ForwardPolicy {
    /// Wait before the second attempt; doubled for each next one, up to `longest_wait`.
    pub first_retry: Duration,
    pub longest_wait: Duration,
    /// Attempts in all before the forward is marked failed.
    pub attempts: i64,
    /// Longest wait for a target's answer.
    pub timeout: Duration,
}

impl Default for ForwardPolicy {
    /// 1, 2, 4 … 256 s: a handler that is down for a few minutes (a restart, a deploy)
    /// still gets every delivery.
    fn default() -> Self {
        ForwardPolicy {
            first_retry: Duration::from_secs(1),
            longest_wait: Duration::from_secs(300),
            attempts: 10,
            timeout: Duration::from_secs(10),
        }
    }
}

impl ForwardPolicy {
    /// The wait after the `attempts`-th failed attempt.
    pub fn wait_after(&self, attempts: i64) -> Duration {
        let doubled = self
            .first_retry
            .saturating_mul(2u32.saturating_pow(attempts.saturating_sub(1).clamp(0, 31) as u32));
        doubled.min(self.longest_wait)
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
/// `base` has of its own). `None` when the sub-path would leave `base`'s path (`..`, also
/// percent-encoded): a sender must not reach other routes of the user's handler.
pub fn target_url(base: &str, path: &str, token: &str, query: Option<&str>) -> Option<String> {
    let suffix = path
        .strip_prefix("/h/")
        .and_then(|rest| rest.strip_prefix(token))
        .unwrap_or("");
    if climbs_out(suffix) {
        return None;
    }
    let mut url = url::Url::parse(base).ok()?;
    let own = url.path().trim_end_matches('/').to_string();
    let joined = format!("{own}{suffix}");
    url.set_path(if joined.is_empty() { "/" } else { &joined });
    let inside = url.path() == own
        || url.path().starts_with(&format!("{own}/"))
        || (own.is_empty() && url.path() == "/");
    if !inside {
        return None;
    }
    let query = match (url.query(), query.filter(|q| !q.is_empty())) {
        (Some(own), Some(theirs)) => Some(format!("{own}&{theirs}")),
        (own, theirs) => own.or(theirs).map(str::to_string),
    };
    url.set_query(query.as_deref());
    Some(url.to_string())
}

/// Whether a sub-path leaves its base once a handler decodes and normalises it, the way
/// handlers do: percent-decoding (up to three times: `%252e` is `%2e` after one), `\\` as
/// well as `/` between segments, and `;params` after a segment (`..;/` in Java servers).
fn climbs_out(sub_path: &str) -> bool {
    let leaves = |text: &str| {
        let mut depth = 0i32;
        for segment in text.split(['/', '\\']) {
            match segment.split(';').next().unwrap_or("") {
                ".." => depth -= 1,
                "" | "." => {}
                _ => depth += 1,
            }
            if depth < 0 {
                return true;
            }
        }
        false
    };
    let mut text = sub_path.to_string();
    for _ in 0..4 {
        if leaves(&text) {
            return true;
        }
        let decoded = percent_encoding::percent_decode_str(&text)
            .decode_utf8_lossy()
            .into_owned();
        if decoded == text {
            return false;
        }
        text = decoded;
    }
    // Still changing after four rounds of decoding: nothing a handler should be sent.
    true
}

struct Due {
    seq: i64,
    /// The endpoint: one delivery at a time per endpoint's handler.
    queue: String,
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
        let mut running: JoinSet<bool> = JoinSet::new();
        // Queues with a delivery in flight, by task; queues resting after a result could
        // not be stored (so the same delivery is not sent again at once).
        let mut busy: HashMap<tokio::task::Id, String> = HashMap::new();
        let mut resting: HashMap<String, Instant> = HashMap::new();
        loop {
            resting.retain(|_, until| *until > Instant::now());
            if busy.len() < MAX_TARGETS_AT_ONCE {
                let skip: HashSet<String> = busy.values().chain(resting.keys()).cloned().collect();
                match state.read(move |conn| next_due(conn, &skip)).await {
                    Ok(due) => {
                        for due in due.into_iter().take(MAX_TARGETS_AT_ONCE - busy.len()) {
                            let queue = due.queue.clone();
                            let (state, client, policy) =
                                (state.clone(), client.clone(), policy.clone());
                            let task = running.spawn(async move {
                                let outcome = send(&client, &due, &state.install_id).await;
                                match record(&state, &policy, due, outcome).await {
                                    Ok(()) => true,
                                    Err(error) => {
                                        tracing::warn!(%error, "a forward's result was not stored");
                                        false
                                    }
                                }
                            });
                            busy.insert(task.id(), queue);
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
                Some(done) = running.join_next_with_id() => {
                    let (id, stored) = match done {
                        Ok((id, stored)) => (id, stored),
                        Err(error) => (error.id(), false),
                    };
                    if let Some(queue) = busy.remove(&id)
                        && !stored
                    {
                        resting.insert(queue, Instant::now() + RESTING);
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

/// How long a queue waits after its result could not be stored.
const RESTING: Duration = Duration::from_secs(5);

/// The earliest due forward of each endpoint not in `skip`.
fn next_due(conn: &rusqlite::Connection, skip: &HashSet<String>) -> Result<Vec<Due>> {
    // SQLite takes the other columns from the row holding min(next_at).
    let mut stmt = conn.prepare_cached(
        "SELECT f.event_seq, f.target, f.attempts, e.id, e.method, e.headers, e.body,
                e.endpoint_id, min(f.next_at)
         FROM forwards f JOIN events e ON e.seq = f.event_seq
         WHERE f.state = 'pending' AND f.next_at <= ?1
         GROUP BY e.endpoint_id",
    )?;
    let mut rows = stmt.query([now_micros()])?;
    let mut due: Vec<Due> = Vec::new();
    while let Some(row) = rows.next()? {
        let queue: String = row.get(7)?;
        if skip.contains(&queue) {
            continue;
        }
        let headers: String = row.get(5)?;
        due.push(Due {
            seq: row.get(0)?,
            target: row.get(1)?,
            attempts: row.get(2)?,
            event_id: row.get(3)?,
            method: row.get(4)?,
            headers: serde_json::from_str(&headers).unwrap_or_default(),
            body: row.get(6)?,
            queue,
        });
    }
    Ok(due)
}

async fn send(client: &reqwest::Client, due: &Due, install_id: &str) -> Outcome {
    let started = Instant::now();
    let method =
        reqwest::Method::from_bytes(due.method.as_bytes()).unwrap_or(reqwest::Method::POST);
    let mut request = client.request(method, &due.target);
    for (name, value) in &due.headers {
        if !NOT_FORWARDED.contains(&name.to_ascii_lowercase().as_str()) {
            request = request.header(name, value);
        }
    }
    request = request.header(LOOP_HEADER, install_id);
    let result = request.body(due.body.clone()).send().await;
    let elapsed = |started: Instant| started.elapsed().as_millis() as i64;
    match result {
        Ok(response) => {
            let status = i64::from(response.status().as_u16());
            let headers = answer_headers(&response);
            // The status is the answer: a body that breaks off is kept as far as it came.
            let (body, _) = read_limited(response).await;
            Outcome {
                status: Some(status),
                headers: serde_json::to_string(&headers).ok(),
                body: Some(body),
                duration_ms: elapsed(started),
                error: (!(200..300).contains(&status))
                    .then(|| format!("the target answered {status}")),
            }
        }
        Err(error) => Outcome {
            status: None,
            headers: None,
            body: None,
            duration_ms: elapsed(started),
            error: Some(why_unanswered(error)),
        },
    }
}

/// Why a request got no answer, in the words the event detail shows.
pub(crate) fn why_unanswered(error: reqwest::Error) -> String {
    if error.is_timeout() {
        "the target did not answer in time".to_string()
    } else if error.is_connect() {
        format!(
            "the target refused the connection: is it running? ({})",
            error.without_url()
        )
    } else {
        error.without_url().to_string()
    }
}

/// An answer's headers, in order.
pub(crate) fn answer_headers(response: &reqwest::Response) -> Vec<(String, String)> {
    response
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// The first [`RESPONSE_LIMIT`] bytes of the answer, and why it broke off if it did.
pub(crate) async fn read_limited(mut response: reqwest::Response) -> (Vec<u8>, Option<String>) {
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
        let wait = policy.wait_after(attempts);
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
        let url = |base, path, query| target_url(base, path, "tok", query);
        assert_eq!(
            url(
                "http://localhost:3000/webhooks/systeme",
                "/h/tok/orders/1",
                Some("x=1")
            )
            .unwrap(),
            "http://localhost:3000/webhooks/systeme/orders/1?x=1"
        );
        assert_eq!(
            url("http://localhost:3000", "/h/tok", None).unwrap(),
            "http://localhost:3000/"
        );
        assert_eq!(
            url("https://h.example/in?key=abc", "/h/tok", Some("a=b")).unwrap(),
            "https://h.example/in?key=abc&a=b"
        );
    }

    #[test]
    fn a_sub_path_cannot_leave_the_handler_path() {
        let base = "http://localhost:3000/webhooks/systeme";
        for path in [
            "/h/tok/../../admin",
            "/h/tok/%2e%2e/%2e%2e/admin",
            "/h/tok/%2E%2E/x",
            "/h/tok/..",
            "/h/tok/..%2fadmin",
            "/h/tok/..%2Fadmin",
            "/h/tok/..%5cadmin",
            "/h/tok/..\\admin",
            "/h/tok/..;/admin",
            "/h/tok/%2e%2e;x/admin",
            "/h/tok/a/..%2f..%2fadmin",
            "/h/tok/%252e%252e%252fadmin",
            "/h/tok/%25252e%25252e/admin",
        ] {
            assert_eq!(target_url(base, path, "tok", None), None, "{path}");
        }
        assert!(
            target_url(base, "/h/tok/a/../b", "tok", None).is_some(),
            "stays inside"
        );
    }

    #[test]
    fn waits_double_up_to_the_longest() {
        let policy = ForwardPolicy::default();
        let waits: Vec<u64> = (1..=10).map(|a| policy.wait_after(a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]);
    }
}
