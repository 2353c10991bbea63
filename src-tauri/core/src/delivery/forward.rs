//! Forwarding: an endpoint can pass every delivery on to the user's own handler (say
//! `http://localhost:3000/webhooks/systeme`) with the same method, sub-path, query,
//! headers (hop-by-hop ones aside) and exact body bytes. The delivery is stored and
//! acknowledged first: the forward is a row written in the same transaction, worked
//! through here, retried with backoff when the target fails, and its answer kept.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::broadcast;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::store::db::ReadPool;
use crate::store::events::EventMeta;
use crate::store::forwards::{
    self, Attempt, Due, ForwardUpdate, ForwardView, LOOP_HEADER, NOT_FORWARDED,
};
use crate::store::writer::Writer;
use crate::timefmt::now_micros;

/// How much of a target's answer is kept.
pub const RESPONSE_LIMIT: usize = 64 * 1024;

/// What the forward worker works with, and nothing more.
#[derive(Clone)]
pub struct ForwardHandle {
    pub policy: ForwardPolicy,
    /// Each stored delivery wakes the worker.
    pub published: broadcast::Sender<Arc<EventMeta>>,
    pub reads: ReadPool,
    pub writer: Arc<Writer>,
    /// Where each result is announced (the live stream).
    pub results: broadcast::Sender<Arc<ForwardUpdate>>,
    pub shutdown: CancellationToken,
    /// Sent in [`LOOP_HEADER`].
    pub install_id: String,
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

struct Outcome {
    status: Option<i64>,
    headers: Option<String>,
    body: Option<Vec<u8>>,
    duration_ms: i64,
    error: Option<String>,
}

/// Starts the forwarder; it stops with the server.
pub fn start(handle: ForwardHandle) {
    tokio::spawn(async move {
        let policy = handle.policy.clone();
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
        let mut wake = handle.published.subscribe();
        let mut running: JoinSet<bool> = JoinSet::new();
        // Queues with a delivery in flight, by task; queues resting after a result could
        // not be stored (so the same delivery is not sent again at once).
        let mut busy: HashMap<tokio::task::Id, String> = HashMap::new();
        let mut resting: HashMap<String, Instant> = HashMap::new();
        loop {
            resting.retain(|_, until| *until > Instant::now());
            if busy.len() < MAX_TARGETS_AT_ONCE {
                let skip: HashSet<String> = busy.values().chain(resting.keys()).cloned().collect();
                let reads = handle.reads.clone();
                match crate::store::db::read(&reads, move |conn| forwards::next_due(conn, &skip))
                    .await
                {
                    Ok(due) => {
                        for due in due.into_iter().take(MAX_TARGETS_AT_ONCE - busy.len()) {
                            let queue = due.queue.clone();
                            let (handle, client, policy) =
                                (handle.clone(), client.clone(), policy.clone());
                            let task = running.spawn(async move {
                                let outcome = send(&client, &due, &handle.install_id).await;
                                match record(&handle, &policy, due, outcome).await {
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
                _ = handle.shutdown.cancelled() => return,
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
    handle: &ForwardHandle,
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
    handle
        .writer
        .run(move |conn| {
            forwards::record_attempt(
                conn,
                &Attempt {
                    seq,
                    state: forward_state,
                    attempts,
                    next_at,
                    status: outcome.status,
                    duration_ms: outcome.duration_ms,
                    error: outcome.error.as_deref(),
                    headers: outcome.headers.as_deref(),
                    body: outcome.body.as_deref(),
                },
            )
        })
        .await?;
    let _ = handle.results.send(Arc::new(ForwardUpdate {
        id: due.event_id,
        forward: view,
    }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_longest() {
        let policy = ForwardPolicy::default();
        let waits: Vec<u64> = (1..=10).map(|a| policy.wait_after(a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]);
    }
}
