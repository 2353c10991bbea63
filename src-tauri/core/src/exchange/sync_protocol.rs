//! The sync protocol between a relay (`http/sync.rs`) and a follower
//! (`delivery/follow.rs`), in one place both use: routes, header names, the page's size,
//! the heartbeat and the silence that means a relay is gone ([`SyncTiming`]), and how long
//! one line can be.
//!
//! - `GET /sync/v1/deliveries?after=SEQ&limit=N`: up to N deliveries after SEQ, one line
//!   each ([`crate::exchange::delivery_json`]); a page stops after [`PAGE_BYTES`] but always
//!   holds at least one delivery. [`HEAD`] is the relay's newest seq.
//! - `GET /sync/v1/live?after=SEQ`: every delivery after SEQ, then each new one, for as long
//!   as the connection stays; `{"head": SEQ}` every [`HEARTBEAT`] when nothing is new.
//!
//! Both need `Authorization: Bearer SYNC_TOKEN` and carry [`RELAY`] (the relay's id) and
//! [`MOST_LINE`] (the longest line it can send, from its body limit).

use std::time::Duration;

use crate::capture::body::BodyLimit;

pub const PAGE_PATH: &str = "/sync/v1/deliveries";
pub const LIVE_PATH: &str = "/sync/v1/live";

/// The relay's id: a follower pointed at another store starts over from its beginning.
pub const RELAY: &str = "x-hookscope-relay";
/// The relay's newest seq (on pages).
pub const HEAD: &str = "x-hookscope-head";
/// The longest line the relay can send, in bytes.
pub const MOST_LINE: &str = "x-hookscope-most-line";

/// Deliveries a follower asks for per page, and the most a relay gives.
pub const PAGE_ROWS: usize = 500;
pub const MOST_PAGE_ROWS: usize = 1000;
/// Body bytes after which a relay ends a page (it holds at least one delivery).
pub const PAGE_BYTES: usize = 8 * 1024 * 1024;

/// How often the live feed speaks when there is nothing new.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// The protocol's clock: the relay's heartbeat, and the follower's deadlines and pauses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncTiming {
    /// How often a relay's live feed speaks when there is nothing new.
    pub heartbeat: Duration,
    /// To connect to the relay.
    pub connect: Duration,
    /// Silence this long (an answer's headers, between two reads of a page or the live
    /// feed) means the relay, or the way to it, is gone: three heartbeats missed.
    pub silence: Duration,
    /// Pauses between tries after a failure: from the first, doubling, to the last.
    pub retry_first: Duration,
    pub retry_last: Duration,
}

impl SyncTiming {
    /// With this heartbeat, and the silence that follows from it.
    pub fn with_heartbeat(heartbeat: Duration) -> SyncTiming {
        SyncTiming {
            heartbeat,
            connect: Duration::from_secs(10),
            silence: heartbeat * 3,
            retry_first: Duration::from_millis(250),
            retry_last: Duration::from_secs(30),
        }
    }
}

impl Default for SyncTiming {
    fn default() -> Self {
        SyncTiming::with_heartbeat(HEARTBEAT)
    }
}

/// Room in a line for everything but the body: its headers (escaped) and other fields.
const LINE_OVERHEAD: usize = 1024 * 1024;

/// The longest line a relay whose body limit is `max_body` can send: a body goes as
/// base64 (4/3 of its size) whenever escaping it as text would cost more.
pub fn most_line(max_body: BodyLimit) -> usize {
    max_body.bytes().div_ceil(3) * 4 + LINE_OVERHEAD
}

/// `{"head": N}`: the relay is there and has nothing new.
pub fn heartbeat(head: i64) -> String {
    format!("{{\"head\":{head}}}\n")
}

/// The head a heartbeat line says, if it is one.
pub fn heartbeat_head(line: &[u8]) -> Option<i64> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Heartbeat {
        head: i64,
    }
    serde_json::from_slice::<Heartbeat>(line)
        .ok()
        .map(|h| h.head)
}

/// A follower's reading of pages and the live feed: lines out of an answer's pieces, in
/// linear time: each piece is searched once for line
/// ends, and a line longer than the relay can send is refused before it is all held.
pub struct Lines {
    pending: Vec<u8>,
    longest: usize,
}

impl Lines {
    pub fn new(longest: usize) -> Lines {
        Lines {
            pending: Vec::new(),
            longest,
        }
    }

    /// Adds a piece; gives each line it completes (without its newline) to `each`.
    pub fn push(
        &mut self,
        piece: &[u8],
        mut each: impl FnMut(&[u8]),
    ) -> std::result::Result<(), String> {
        let mut rest = piece;
        while let Some(end) = memchr::memchr(b'\n', rest) {
            if self.pending.is_empty() {
                if end > 0 {
                    each(&rest[..end]);
                }
            } else {
                self.pending.extend_from_slice(&rest[..end]);
                each(&self.pending);
                self.pending.clear();
            }
            rest = &rest[end + 1..];
        }
        self.pending.extend_from_slice(rest);
        if self.pending.len() > self.longest {
            return Err(format!(
                "the relay sent a line longer than any delivery it can hold ({} bytes)",
                self.longest
            ));
        }
        Ok(())
    }

    /// The answer ended: a line left without its newline was cut off.
    pub fn finish(&self) -> std::result::Result<(), String> {
        if self.pending.is_empty() {
            Ok(())
        } else {
            Err("the relay's answer ended in the middle of a line".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_come_whole_across_pieces_and_a_line_too_long_is_refused() {
        let mut lines = Lines::new(16);
        let mut got: Vec<String> = Vec::new();
        for piece in [&b"{\"a\""[..], b":1}\n{\"b", b"\":2}\n\n", b"{}\n"] {
            lines
                .push(piece, |line| {
                    got.push(String::from_utf8(line.to_vec()).unwrap())
                })
                .unwrap();
        }
        assert_eq!(got, [r#"{"a":1}"#, r#"{"b":2}"#, "{}"]);
        assert!(lines.finish().is_ok());
        lines.push(b"{\"cut", |_| {}).unwrap();
        assert!(
            lines.finish().is_err(),
            "an answer ending mid-line is cut off"
        );
        let mut long = Lines::new(16);
        assert!(
            long.push(&[b'x'; 17], |_| {}).is_err(),
            "past the longest line"
        );
    }

    #[test]
    fn a_heartbeat_is_recognised_and_nothing_else_is() {
        assert_eq!(
            heartbeat_head(heartbeat(42).trim_end().as_bytes()),
            Some(42)
        );
        assert_eq!(heartbeat_head(br#"{"head":1,"seq":2}"#), None);
        assert_eq!(heartbeat_head(br#"{"seq":9223372036854775807}"#), None);
    }

    #[test]
    fn the_longest_line_holds_a_body_as_base64() {
        assert!(most_line(BodyLimit::DEFAULT) >= 10 * 1024 * 1024 * 4 / 3);
        let timing = SyncTiming::default();
        assert!(
            timing.silence > timing.heartbeat * 2,
            "a heartbeat late is no silence"
        );
    }
}
