//! Following a relay: another Hookscope (`serve --sync`) that receives while this one is
//! off. The follower pulls every delivery it has not got, in the relay's order, into its
//! own store (same ids, so nothing is stored twice), then follows the relay's live feed.
//! What it pulls is stored as received, with the cursor in the same transaction, and
//! derived and forwarded here like a delivery that arrived here.
//!
//! The protocol is [`crate::exchange::sync_protocol`]. Every wait has a deadline (the
//! connection, an answer's headers, each read of a page or the feed); every failure is
//! followed by a pause that doubles, with jitter, up to [`SyncTiming::retry_last`], and
//! is said once per change; the cursor moves only with what was stored.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::capture::body::BodyLimit;
use crate::capture::token_guard::TokenGuard;
use crate::exchange::import::{SyncedLine, keep_api_token_out, synced_delivery};
use crate::exchange::sync_protocol::{
    self, HEAD, LIVE_PATH, Lines, MOST_LINE, PAGE_PATH, PAGE_ROWS, RELAY, SyncTiming,
};
use crate::store::db::{self, ReadPool};
use crate::store::endpoints::Directory;
use crate::store::forwards;
use crate::store::settings::{self, Setting};
use crate::store::writer::{Arrival, ForwardOrder, Writer};
use crate::timefmt;

pub use crate::delivery::follow_target::FollowTarget;

/// No line is longer than this, whatever a relay says (its `--max-body` would be 750 MiB).
const LONGEST_LINE_EVER: usize = 1024 * 1024 * 1024;

/// Where following stands, for the header.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct FollowView {
    /// The relay's sync URL; `None`: not following.
    pub relay: Option<String>,
    #[ts(type = "'off' | 'connecting' | 'catching_up' | 'following' | 'unreachable'")]
    pub state: &'static str,
    /// Deliveries the relay holds that are not here yet, at most (while catching up).
    pub behind: i64,
    /// Unreachable since (RFC 3339), and why.
    pub since: Option<String>,
    pub reason: Option<String>,
    /// Deliveries pulled since this process started following.
    pub received: u64,
}

/// The relay followed, changed by the API or at start, and where following stands.
pub struct FollowControl {
    target: watch::Sender<Option<FollowTarget>>,
    view: watch::Sender<FollowView>,
    /// Deadlines and pauses of following.
    pub timing: SyncTiming,
}

impl Default for FollowControl {
    fn default() -> Self {
        FollowControl::with_timing(SyncTiming::default())
    }
}

impl FollowControl {
    pub fn with_timing(timing: SyncTiming) -> Self {
        FollowControl {
            target: watch::Sender::new(None),
            view: watch::Sender::new(FollowView {
                state: "off",
                ..FollowView::default()
            }),
            timing,
        }
    }

    pub fn target(&self) -> Option<FollowTarget> {
        self.target.borrow().clone()
    }

    /// Follows `target` from now on (`None`: stops following). The caller remembers it.
    pub fn set(&self, target: Option<FollowTarget>) {
        let relay = target.as_ref().map(|t| t.url.clone());
        let changed = self.target.send_if_modified(|current| {
            let changed = *current != target;
            *current = target;
            changed
        });
        // Said at once, so whoever changed it reads the new state back.
        if changed {
            self.view.send_replace(FollowView {
                state: if relay.is_some() { "connecting" } else { "off" },
                relay,
                ..FollowView::default()
            });
        }
    }

    pub fn view(&self) -> FollowView {
        self.view.borrow().clone()
    }

    pub fn watch_view(&self) -> watch::Receiver<FollowView> {
        self.view.subscribe()
    }
}

/// What the follower needs of the server.
#[derive(Clone)]
pub struct FollowHandle {
    pub control: Arc<FollowControl>,
    pub writer: Arc<Writer>,
    pub reads: ReadPool,
    pub directory: Arc<Directory>,
    pub api_token: std::sync::Arc<TokenGuard>,
    pub install_id: String,
    pub max_body: BodyLimit,
    pub shutdown: CancellationToken,
}

/// The cursor: the relay's id (a new relay starts from its beginning) and its last seq
/// stored here.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Cursor {
    relay: String,
    seq: i64,
}

/// Starts the follower; it stops with the server.
pub fn start(handle: FollowHandle) {
    tokio::spawn(async move {
        let mut targets = handle.control.target.subscribe();
        loop {
            let target = targets.borrow_and_update().clone();
            match target {
                Some(target) => {
                    tokio::select! {
                        _ = follow(&handle, &target) => {}
                        _ = targets.changed() => {}
                        _ = handle.shutdown.cancelled() => return,
                    }
                }
                None => {
                    handle.control.view.send_replace(FollowView {
                        state: "off",
                        ..FollowView::default()
                    });
                    tokio::select! {
                        _ = targets.changed() => {}
                        _ = handle.shutdown.cancelled() => return,
                    }
                }
            }
        }
    });
}

/// Follows one relay until told otherwise, trying again while it cannot be reached.
async fn follow(handle: &FollowHandle, target: &FollowTarget) {
    let timing = handle.control.timing;
    let client = match reqwest::Client::builder()
        .connect_timeout(timing.connect)
        .read_timeout(timing.silence)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            set_unreachable(handle, target, &format!("cannot make requests: {error}"));
            return std::future::pending().await;
        }
    };
    let mut received = 0;
    handle.control.view.send_replace(FollowView {
        relay: Some(target.url.clone()),
        state: "connecting",
        ..FollowView::default()
    });
    let mut failures: u32 = 0;
    loop {
        let mut session = Session {
            handle,
            target,
            client: &client,
            received: &mut received,
            progressed: false,
        };
        let outcome = session.run().await;
        // Back to short pauses only once something came through.
        if session.progressed {
            if failures > 0 {
                tracing::info!(relay = %target.url, "relay reachable again");
            }
            failures = 0;
        }
        if let Err(why) = outcome {
            // Said once per reason, not at every try.
            if handle.control.view.borrow().reason.as_deref() != Some(why.as_str()) {
                tracing::warn!(relay = %target.url, %why, "relay unreachable; trying again with growing pauses");
            }
            set_unreachable(handle, target, &why);
        }
        tokio::time::sleep(pause(&timing, failures)).await;
        failures = failures.saturating_add(1);
    }
}

/// The pause after `failures` failures in a row: doubling from the first to the last, a
/// random half of it taken off so followers do not come back all at once.
fn pause(timing: &SyncTiming, failures: u32) -> Duration {
    let full = timing
        .retry_first
        .saturating_mul(2u32.saturating_pow(failures.min(20)))
        .min(timing.retry_last);
    let jitter = getrandom::u64().unwrap_or(0) % 1_000;
    full.mul_f64(0.5 + jitter as f64 / 2_000.0)
}

fn set_unreachable(handle: &FollowHandle, target: &FollowTarget, why: &str) {
    handle.control.view.send_modify(|view| {
        if view.state != "unreachable" {
            view.since = Some(timefmt::format_micros(timefmt::now_micros()));
        }
        view.relay = Some(target.url.clone());
        view.state = "unreachable";
        view.reason = Some(why.to_string());
    });
}

/// One connection's worth of following: catch up page by page, then the live feed, until
/// something fails (the reason is shown).
struct Session<'a> {
    handle: &'a FollowHandle,
    target: &'a FollowTarget,
    client: &'a reqwest::Client,
    received: &'a mut u64,
    /// Something came through in this session (stored, or the live feed spoke): the next
    /// pause starts short again.
    progressed: bool,
}

impl Session<'_> {
    async fn run(&mut self) -> std::result::Result<(), String> {
        let mut cursor = self.cursor().await?;
        loop {
            let url = format!(
                "{}{PAGE_PATH}?after={}&limit={PAGE_ROWS}",
                self.target.url, cursor.seq
            );
            let response = self.get(&url).await?;
            let relay = relay_id(&response)?;
            if relay != cursor.relay {
                // Another relay (or a new store behind the same URL): from its beginning.
                // Deliveries seen before keep their ids, so nothing is stored twice.
                let asked_after = cursor.seq;
                cursor = Cursor { relay, seq: 0 };
                if asked_after != 0 {
                    tracing::info!(relay = %cursor.relay, "a different relay: pulling from its start");
                    continue;
                }
            }
            let head: i64 = number_header(&response, HEAD)?;
            let longest = longest_line(&response, self.handle.max_body);
            let mut lines = Lines::new(longest);
            let mut page: Vec<Vec<u8>> = Vec::new();
            let mut page_bytes = 0;
            let mut body = response;
            while let Some(chunk) = self.read(&mut body).await? {
                lines.push(&chunk, |line| {
                    page_bytes += line.len();
                    page.push(line.to_vec());
                })?;
                // A page stops after PAGE_BYTES of bodies (4/3 as base64), and one more.
                if page_bytes > sync_protocol::PAGE_BYTES * 2 + longest {
                    return Err("the relay sent a page too large to be one".into());
                }
            }
            lines.finish()?;
            let count = self
                .store(&mut cursor, page.iter().map(Vec::as_slice), Some(head))
                .await?;
            // Seqs an erasure left out count too: at most this many to go. "Following"
            // is said once the live feed speaks, never before.
            let behind = (head - cursor.seq).max(0);
            if behind > 0 {
                self.show("catching_up", behind);
            }
            if behind == 0 || count == 0 {
                break;
            }
        }
        self.live(cursor).await
    }

    async fn cursor(&self) -> std::result::Result<Cursor, String> {
        let saved = db::read(&self.handle.reads, |conn| {
            settings::get_setting(conn, Setting::FollowCursor)
        })
        .await
        .map_err(|e| format!("cannot read where following stopped: {e}"))?;
        Ok(saved
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default())
    }

    async fn get(&mut self, url: &str) -> std::result::Result<reqwest::Response, String> {
        let silence = self.handle.control.timing.silence;
        let sent = self.client.get(url).bearer_auth(&self.target.token).send();
        let unanswered = || format!("the relay did not answer within {} s", silence.as_secs());
        let response = tokio::time::timeout(silence, sent)
            .await
            .map_err(|_| unanswered())?
            .map_err(|e| match e.is_timeout() && !e.is_connect() {
                // The client's own read deadline (the same silence) may fire first.
                true => unanswered(),
                false => format!("cannot reach the relay: {}", error_chain(&e)),
            })?;
        match response.status().as_u16() {
            200 => Ok(response),
            401 => Err(
                "the relay refused the sync token (401): copy the `Sync token:` line it prints"
                    .into(),
            ),
            404 => Err(
                "no sync listener at this URL (404): give the `Sync URL:` the relay prints".into(),
            ),
            status => Err(format!("the relay answered {status}")),
        }
    }

    /// The next piece of an answer's body, or `None` at its end; silence past the limit
    /// is a failure.
    async fn read(
        &self,
        response: &mut reqwest::Response,
    ) -> std::result::Result<Option<bytes::Bytes>, String> {
        let silence = self.handle.control.timing.silence;
        let silent = || format!("the relay went silent for {} s", silence.as_secs());
        tokio::time::timeout(silence, response.chunk())
            .await
            .map_err(|_| silent())?
            .map_err(|e| match e.is_timeout() {
                // The client's own read deadline (the same silence) may fire first.
                true => silent(),
                false => format!("the connection to the relay broke: {}", error_chain(&e)),
            })
    }

    /// Stores what the lines hold, with the cursor moved past them in the same transaction;
    /// returns how many lines were deliveries. A line that is not a whole delivery, comes
    /// out of order or runs past the relay's `head` is refused: nothing of the batch is
    /// stored and the cursor stays.
    async fn store<'l>(
        &mut self,
        cursor: &mut Cursor,
        lines: impl Iterator<Item = &'l [u8]>,
        head: Option<i64>,
    ) -> std::result::Result<usize, String> {
        let mut arrivals = Vec::new();
        let mut seq = cursor.seq;
        let mut count = 0;
        for line in lines {
            if sync_protocol::heartbeat_head(line).is_some() {
                continue;
            }
            count += 1;
            let (next, raw) = match synced_delivery(line, self.handle.max_body.bytes()) {
                Ok(SyncedLine::Delivery(next, raw)) => (next, Some(raw)),
                // Stored on the relay but not storable here (a smaller --max-body): named,
                // and passed over so the rest still comes.
                Ok(SyncedLine::TooLargeHere { seq: next, why }) => {
                    tracing::warn!(seq = next, %why, "a relay delivery was not stored");
                    (next, None)
                }
                Err(why) => {
                    return Err(format!(
                        "the relay sent a line that is not a delivery ({why}): nothing after delivery {seq} is taken until it sends whole ones"
                    ));
                }
            };
            if next <= seq {
                return Err(format!(
                    "the relay sent delivery {next} after {seq}: out of order"
                ));
            }
            if let Some(head) = head.filter(|head| next > *head) {
                return Err(format!(
                    "the relay sent delivery {next}, past its newest ({head}): refused"
                ));
            }
            if let Some(mut raw) = raw.map(|raw| *raw) {
                if keep_api_token_out(
                    &mut raw,
                    &self.handle.api_token,
                    self.handle.max_body.bytes(),
                ) {
                    let forward = self.forward_for(&raw);
                    arrivals.push(Arrival { raw, forward });
                } else {
                    tracing::warn!(id = %raw.id, "not stored: it carries this Hookscope's own API token");
                }
            }
            seq = next;
        }
        if seq == cursor.seq {
            return Ok(count);
        }
        let moved = Cursor {
            relay: cursor.relay.clone(),
            seq,
        };
        let text = serde_json::to_string(&moved).expect("a cursor serialises");
        let stored = self
            .handle
            .writer
            .store_followed(arrivals, text)
            .await
            .map_err(|e| format!("cannot store what the relay sent: {e}"))?;
        *self.received += stored as u64;
        *cursor = moved;
        self.progressed = true;
        Ok(count)
    }

    /// The live feed: each chunk's complete lines are stored together.
    async fn live(&mut self, mut cursor: Cursor) -> std::result::Result<(), String> {
        let url = format!("{}{LIVE_PATH}?after={}", self.target.url, cursor.seq);
        let mut response = self.get(&url).await?;
        if relay_id(&response)? != cursor.relay {
            return Err("the relay changed while following: starting again".into());
        }
        let mut lines = Lines::new(longest_line(&response, self.handle.max_body));
        loop {
            let Some(chunk) = self.read(&mut response).await? else {
                return Err("the relay closed the connection".into());
            };
            // It speaks (a heartbeat at least): it is there.
            self.progressed = true;
            let mut complete = Vec::new();
            lines.push(&chunk, |line| complete.push(line.to_vec()))?;
            if !complete.is_empty() {
                self.store(&mut cursor, complete.iter().map(Vec::as_slice), None)
                    .await?;
            }
            self.show("following", 0);
        }
    }

    fn show(&self, state: &'static str, behind: i64) {
        let received = *self.received;
        let relay = self.target.url.clone();
        self.handle.control.view.send_if_modified(|view| {
            let next = FollowView {
                relay: Some(relay),
                state,
                behind,
                since: None,
                reason: None,
                received,
            };
            let changed = *view != next;
            *view = next;
            changed
        });
    }

    /// Forwarded like a delivery that arrived here, when the endpoint it goes through
    /// here forwards.
    fn forward_for(&self, raw: &crate::capture::RawDelivery) -> Option<ForwardOrder> {
        let endpoint = self.handle.directory.for_followed(&raw.endpoint_id)?;
        let base = endpoint.forward_to.as_deref()?;
        // The relay sends the path as `/h/ENDPOINT_ID/rest` (its token stays there).
        let target = forwards::target_url(base, &raw.path, &raw.endpoint_id, raw.query.as_deref())?;
        Some(ForwardOrder {
            target,
            looped: forwards::came_from(&raw.headers, &self.handle.install_id),
        })
    }
}

fn relay_id(response: &reqwest::Response) -> std::result::Result<String, String> {
    response
        .headers()
        .get(RELAY)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .ok_or_else(|| "this is not a Hookscope relay (no X-Hookscope-Relay)".into())
}

fn number_header(response: &reqwest::Response, name: &str) -> std::result::Result<i64, String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("the relay's answer has no {name}"))
}

/// The longest line the relay says it can send (its body limit's), else this store's,
/// and never past [`LONGEST_LINE_EVER`].
fn longest_line(response: &reqwest::Response, max_body: BodyLimit) -> usize {
    response
        .headers()
        .get(MOST_LINE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or_else(|| sync_protocol::most_line(max_body))
        .min(LONGEST_LINE_EVER)
}

/// What went wrong at the bottom of a request's error ("Connection refused (os error
/// 111)", "dns error: ..."): the layers above it only repeat the URL.
fn error_chain(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "it did not answer in time".into();
    }
    let mut deepest: &dyn std::error::Error = error;
    while let Some(cause) = deepest.source() {
        deepest = cause;
    }
    deepest.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_with_jitter_up_to_the_last() {
        let timing = SyncTiming::default();
        let first = pause(&timing, 0);
        assert!(first >= timing.retry_first / 2 && first <= timing.retry_first);
        let late = pause(&timing, 30);
        assert!(late >= timing.retry_last / 2 && late <= timing.retry_last);
    }
}
