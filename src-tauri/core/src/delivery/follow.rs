//! Following a relay: another Hookscope (`serve --sync`) that receives while this one is
//! off. The follower pulls every delivery it has not got, in the relay's order, into its
//! own store (same ids, so nothing is stored twice), then follows the relay's live feed.
//! What it pulls is stored as received, with the cursor in the same transaction, and
//! derived and forwarded here like a delivery that arrived here.
//!
//! The protocol ([`crate::http::sync`]): `GET /sync/v1/deliveries?after=SEQ&limit=N`
//! pages, `GET /sync/v1/live?after=SEQ` a feed that never ends; both NDJSON, both with
//! `Authorization: Bearer SYNC_TOKEN`.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::exchange::import::{keep_api_token_out, synced_delivery};
use crate::store::db::{self, ReadPool};
use crate::store::endpoints::Directory;
use crate::store::forwards;
use crate::store::settings;
use crate::store::writer::{Arrival, ForwardOrder, Writer};
use crate::timefmt;

/// Deliveries asked for per page while catching up.
const PAGE_ROWS: usize = 500;
/// A page or a feed line larger than this is not from a Hookscope relay.
const MOST_BYTES_AT_ONCE: usize = 64 * 1024 * 1024;
/// The relay says something at least this often ([`crate::http::sync::HEARTBEAT`]);
/// silence for longer means the connection is gone.
const SILENCE_MEANS_GONE: Duration = Duration::from_secs(35);
/// Waits between tries while the relay cannot be reached: from the first to the last.
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_LAST: Duration = Duration::from_secs(10);

/// A relay to follow: its sync URL and token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowTarget {
    pub url: String,
    pub token: String,
}

impl FollowTarget {
    /// Checks the URL: `https://`, or `http://` to this machine only (an SSH tunnel), so
    /// the token never crosses a network in clear.
    pub fn new(url: &str, token: &str) -> Result<FollowTarget> {
        let url = url.trim().trim_end_matches('/');
        let parsed = url::Url::parse(url)
            .map_err(|e| Error::Invalid(format!("the relay URL {url:?} is not a URL: {e}")))?;
        let loopback = match parsed.host() {
            Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        match parsed.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => {
                return Err(Error::Invalid(format!(
                    "the relay URL {url} is plain http:// to another machine: the sync token would cross the network in clear. Use https:// (your reverse proxy) or an SSH tunnel to 127.0.0.1"
                )));
            }
            other => {
                return Err(Error::Invalid(format!(
                    "the relay URL must start with https:// (or http://127.0.0.1), not {other}://"
                )));
            }
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(Error::Invalid(format!(
                "the relay URL {url} has a query or fragment: give the sync URL the relay printed"
            )));
        }
        let token = token.trim();
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::Invalid(
                "the sync token is empty or has spaces: copy the `Sync token:` line the relay printed".into(),
            ));
        }
        Ok(FollowTarget {
            url: url.to_string(),
            token: token.to_string(),
        })
    }
}

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
}

impl Default for FollowControl {
    fn default() -> Self {
        FollowControl {
            target: watch::Sender::new(None),
            view: watch::Sender::new(FollowView {
                state: "off",
                ..FollowView::default()
            }),
        }
    }
}

impl FollowControl {
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
    pub api_token: String,
    pub install_id: String,
    pub max_body: usize,
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
    let client = match reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
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
    let mut wait = RETRY_FIRST;
    loop {
        let mut session = Session {
            handle,
            target,
            client: &client,
            received: &mut received,
            heard: false,
        };
        let outcome = session.run().await;
        if session.heard {
            wait = RETRY_FIRST;
        }
        if let Err(why) = outcome {
            // Said once per reason, not at every try.
            if handle.control.view.borrow().reason.as_deref() != Some(why.as_str()) {
                tracing::warn!(relay = %target.url, %why, "relay unreachable");
            }
            set_unreachable(handle, target, &why);
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(RETRY_LAST);
    }
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
    /// The relay answered in this session: the next wait starts short again.
    heard: bool,
}

impl Session<'_> {
    async fn run(&mut self) -> std::result::Result<(), String> {
        let mut cursor = self.cursor().await?;
        loop {
            let url = format!(
                "{}/sync/v1/deliveries?after={}&limit={PAGE_ROWS}",
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
            let head: i64 = number_header(&response, "x-hookscope-head")?;
            let page = read_page(response).await?;
            let lines = page.split(|&b| b == b'\n').filter(|l| !l.is_empty());
            let count = self.store(&mut cursor, lines).await?;
            // Seqs an erasure left out count too: at most this many to go.
            let behind = (head - cursor.seq).max(0);
            self.show(
                if behind > 0 {
                    "catching_up"
                } else {
                    "following"
                },
                behind,
            );
            if behind == 0 || count == 0 {
                break;
            }
        }
        self.live(cursor).await
    }

    async fn cursor(&self) -> std::result::Result<Cursor, String> {
        let saved = db::read(&self.handle.reads, |conn| {
            settings::get_setting(conn, settings::FOLLOW_CURSOR)
        })
        .await
        .map_err(|e| format!("cannot read where following stopped: {e}"))?;
        Ok(saved
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default())
    }

    async fn get(&mut self, url: &str) -> std::result::Result<reqwest::Response, String> {
        let response = self
            .client
            .get(url)
            .bearer_auth(&self.target.token)
            .send()
            .await
            .map_err(|e| format!("cannot reach the relay: {}", error_chain(&e)))?;
        self.heard = true;
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

    /// Stores what the lines hold, with the cursor moved past them; returns how many
    /// lines were deliveries.
    async fn store<'l>(
        &mut self,
        cursor: &mut Cursor,
        lines: impl Iterator<Item = &'l [u8]>,
    ) -> std::result::Result<usize, String> {
        let mut arrivals = Vec::new();
        let mut seq = cursor.seq;
        let mut count = 0;
        for line in lines {
            if is_heartbeat(line) {
                continue;
            }
            count += 1;
            let next = match synced_delivery(line, self.handle.max_body) {
                Ok((next, mut raw)) => {
                    if next <= seq {
                        return Err(format!(
                            "the relay sent delivery {next} after {seq}: out of order"
                        ));
                    }
                    if keep_api_token_out(&mut raw, &self.handle.api_token, self.handle.max_body) {
                        let forward = self.forward_for(&raw);
                        arrivals.push(Arrival { raw, forward });
                    } else {
                        tracing::warn!(id = %raw.id, "not stored: it carries this Hookscope's own API token");
                    }
                    next
                }
                // Stored on the relay but not storable here (a smaller --max-body): named,
                // and passed over so the rest still comes.
                Err(why) => {
                    let next = seq_of(line).ok_or_else(|| {
                        format!("the relay sent something that is not a delivery: {why}")
                    })?;
                    tracing::warn!(seq = next, %why, "a relay delivery was not stored");
                    next
                }
            };
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
            .store_followed(arrivals, settings::FOLLOW_CURSOR.to_string(), text)
            .await
            .map_err(|e| format!("cannot store what the relay sent: {e}"))?;
        *self.received += stored as u64;
        *cursor = moved;
        Ok(count)
    }

    /// The live feed: each chunk's complete lines are stored together.
    async fn live(&mut self, mut cursor: Cursor) -> std::result::Result<(), String> {
        let url = format!("{}/sync/v1/live?after={}", self.target.url, cursor.seq);
        let mut response = self.get(&url).await?;
        if relay_id(&response)? != cursor.relay {
            return Err("the relay changed while following: starting again".into());
        }
        self.show("following", 0);
        let mut pending: Vec<u8> = Vec::new();
        loop {
            let chunk = tokio::time::timeout(SILENCE_MEANS_GONE, response.chunk())
                .await
                .map_err(|_| "the relay went silent".to_string())?
                .map_err(|e| format!("the connection to the relay broke: {}", error_chain(&e)))?;
            let Some(chunk) = chunk else {
                return Err("the relay closed the connection".into());
            };
            pending.extend_from_slice(&chunk);
            let Some(end) = pending.iter().rposition(|&b| b == b'\n') else {
                if pending.len() > MOST_BYTES_AT_ONCE {
                    return Err("the relay sent a line too long to be a delivery".into());
                }
                continue;
            };
            let rest = pending.split_off(end + 1);
            let complete = std::mem::replace(&mut pending, rest);
            let lines = complete.split(|&b| b == b'\n').filter(|l| !l.is_empty());
            self.store(&mut cursor, lines).await?;
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
        .get("x-hookscope-relay")
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

async fn read_page(mut response: reqwest::Response) -> std::result::Result<Vec<u8>, String> {
    let mut page = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("the connection to the relay broke: {}", error_chain(&e)))?
    {
        page.extend_from_slice(&chunk);
        if page.len() > MOST_BYTES_AT_ONCE {
            return Err("the relay sent a page too large to be one".into());
        }
    }
    Ok(page)
}

/// `{"head": N}`: the relay is there and has nothing new.
fn is_heartbeat(line: &[u8]) -> bool {
    line.starts_with(b"{\"head\":")
}

fn seq_of(line: &[u8]) -> Option<i64> {
    #[derive(Deserialize)]
    struct Seq {
        seq: i64,
    }
    serde_json::from_slice::<Seq>(line).ok().map(|s| s.seq)
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
    fn the_token_only_goes_over_https_or_to_this_machine() {
        assert!(FollowTarget::new("https://relay.example.com/", "t").is_ok());
        assert!(FollowTarget::new("http://127.0.0.1:4749", "t").is_ok());
        assert!(FollowTarget::new("http://localhost:4749", "t").is_ok());
        assert!(FollowTarget::new("http://[::1]:4749", "t").is_ok());
        let refused = FollowTarget::new("http://relay.example.com", "t").unwrap_err();
        assert!(
            refused.to_string().contains("in clear"),
            "plain http to another machine is refused with why: {refused}"
        );
        assert!(FollowTarget::new("http://10.0.0.5:4749", "t").is_err());
        assert!(FollowTarget::new("ftp://relay", "t").is_err());
        assert!(FollowTarget::new("https://relay", " ").is_err());
        assert_eq!(
            FollowTarget::new("https://relay.example.com/sync/", "t")
                .unwrap()
                .url,
            "https://relay.example.com/sync",
            "a trailing slash is dropped so routes join cleanly"
        );
    }
}
