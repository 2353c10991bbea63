//! Two deliveries compared: their headers by name, and their bodies as a reader sees them
//! (the `Content-Encoding` undone, within the inflate limit): by JSON path when both are
//! JSON (a form body counts as the object of its fields), line by line when both are text,
//! and by size and hash otherwise. Pure; what is reported is bounded, so a huge body costs
//! no more than its parse (itself bounded by [`body::JSON_NODE_BUDGET`]).
//!
//! Paths are written as the shapes write them (`order.totalPrice`), with array items by
//! index (`orderItem.resources[0].course.id`) and keys that would read ambiguously in
//! brackets (`fields["first.name"]`); the whole body is the empty path.

use std::borrow::Cow;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use similar::{ChangeTag, TextDiff};
use treediff::value::Key;
use ts_rs::TS;

use crate::capture::body;
use crate::capture::fields;

/// Most changes listed for a body's JSON or a header list; the rest are counted.
pub const MOST_CHANGES: usize = 1_000;
/// Most lines of a text diff listed (changed lines and their context); the rest counted.
pub const MOST_TEXT_LINES: usize = 2_000;
/// Longest line (in characters) shown in full; longer ones end with `…`.
pub const LONGEST_LINE: usize = 2_000;
/// Unchanged lines shown around each change in a text diff.
const CONTEXT_LINES: usize = 3;
/// Past this, the line diff settles for a coarser (still correct) answer.
const TEXT_DIFF_TIMEOUT: Duration = Duration::from_secs(2);

/// What one side of the comparison is: a delivery's headers and its stored body.
#[derive(Debug, Clone, Copy)]
pub struct Side<'a> {
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// How a path or a header differs from one side (`a`) to the other (`b`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(rename = "DiffChange")]
pub enum Change {
    /// Only in `b`.
    Added,
    /// Only in `a`.
    Removed,
    /// In both, with other values.
    Changed,
}

/// Two deliveries' headers and bodies compared.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct Compared {
    pub headers: HeadersDiff,
    pub body: BodyDiff,
}

/// Headers by name in any case; a name sent more than once is compared as its values
/// joined by `, `.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct HeadersDiff {
    /// In `a`'s order, then what only `b` has in its order.
    pub changes: Vec<HeaderChange>,
    /// Headers with the same value on both sides (`[name, value]`, in `a`'s order).
    pub unchanged: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct HeaderChange {
    /// As the side that has it spelled it (`a`'s when both do).
    pub name: String,
    pub change: Change,
    pub a: Option<String>,
    pub b: Option<String>,
}

/// The bodies compared.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct BodyDiff {
    /// The bodies as stored are the same bytes.
    pub identical: bool,
    pub a_size: usize,
    pub b_size: usize,
    /// A side's `Content-Encoding` (gzip, deflate) was undone before comparing.
    pub decoded: bool,
    pub diff: BodyChanges,
}

/// How the bodies were compared, and what differs.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BodyChanges {
    /// Both are JSON (or forms, as the object of their fields): by path.
    Json(JsonDiff),
    /// Both are text, one of them not JSON: by line.
    Text(TextDiff_),
    /// One is not text: only whether they are the same bytes.
    Binary(BinaryDiff),
}

/// Two JSON documents by path; objects by key, arrays by index.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct JsonDiff {
    /// At most [`MOST_CHANGES`], by path.
    pub changes: Vec<PathChange>,
    /// Changes not listed.
    pub more: usize,
    /// Values (leaves: strings, numbers, booleans, nulls, empty arrays and objects) the
    /// same on both sides, at the same path.
    pub unchanged: usize,
    /// A document is too large to be held whole (more than 20,000 values): only its first
    /// part was compared.
    pub partial: bool,
}

/// One path that differs: an added or removed path carries its whole value.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct PathChange {
    /// `order.totalPrice`, `orderItem.resources[0]`; `""` for the whole document.
    pub path: String,
    pub change: Change,
    /// The value in `a` (absent when added).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional, as = "Option<AnyJson>")]
    pub a: Option<Value>,
    /// The value in `b` (absent when removed).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional, as = "Option<AnyJson>")]
    pub b: Option<Value>,
}

/// Any JSON value (a value compared).
#[derive(Debug, TS)]
#[ts(type = "unknown")]
pub struct AnyJson;

/// Two texts line by line, in hunks with [`CONTEXT_LINES`] of context; the unchanged
/// lines between hunks are only counted.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(rename = "TextDiff")]
pub struct TextDiff_ {
    pub hunks: Vec<Hunk>,
    /// Changed lines (removed or added) not listed.
    pub more: usize,
    /// Lines the same on both sides (listed as context or not).
    pub unchanged: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct Hunk {
    /// The first line's number in `a` and in `b` (from 1).
    pub a_line: usize,
    pub b_line: usize,
    /// Unchanged lines left out before this hunk.
    pub folded_before: usize,
    pub lines: Vec<Line>,
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(rename = "DiffLine")]
pub struct Line {
    pub tag: LineTag,
    /// Without its line ending; at most [`LONGEST_LINE`] characters, then `…`.
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum LineTag {
    Same,
    Removed,
    Added,
}

/// Bodies that are not both text: never shown, only told apart.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct BinaryDiff {
    /// The bytes compared (decoded, when [`BodyDiff::decoded`]) are the same.
    pub identical: bool,
    /// Where they first differ (a byte offset; the shorter one's length when one is the
    /// start of the other); null when identical.
    pub first_difference: Option<usize>,
    pub a_sha256: String,
    pub b_sha256: String,
}

/// Compares two deliveries. `inflate_limit`: how far a compressed body is inflated (past
/// it, its stored bytes are compared).
pub fn compare(a: Side, b: Side, inflate_limit: usize) -> Compared {
    Compared {
        headers: compare_headers(a.headers, b.headers),
        body: compare_bodies(a, b, inflate_limit),
    }
}

// ---- headers --------------------------------------------------------------------------

/// Each name once (its first spelling), with its values joined, in order of appearance.
fn by_name(headers: &[(String, String)]) -> Vec<(&str, String)> {
    let mut out: Vec<(&str, String)> = Vec::new();
    for (name, value) in headers {
        match out.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            Some((_, joined)) => {
                joined.push_str(", ");
                joined.push_str(value);
            }
            None => out.push((name, value.clone())),
        }
    }
    out
}

pub fn compare_headers(a: &[(String, String)], b: &[(String, String)]) -> HeadersDiff {
    let a = by_name(a);
    let b = by_name(b);
    let mut changes = Vec::new();
    let mut unchanged = Vec::new();
    for (name, value) in &a {
        match b.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            Some((_, other)) if other == value => {
                unchanged.push((name.to_string(), value.clone()));
            }
            Some((_, other)) => changes.push(HeaderChange {
                name: name.to_string(),
                change: Change::Changed,
                a: Some(value.clone()),
                b: Some(other.clone()),
            }),
            None => changes.push(HeaderChange {
                name: name.to_string(),
                change: Change::Removed,
                a: Some(value.clone()),
                b: None,
            }),
        }
    }
    for (name, value) in &b {
        if !a.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            changes.push(HeaderChange {
                name: name.to_string(),
                change: Change::Added,
                a: None,
                b: Some(value.clone()),
            });
        }
    }
    HeadersDiff { changes, unchanged }
}

// ---- bodies ---------------------------------------------------------------------------

/// A body as a reader sees it.
enum Reading {
    Json { value: Value, complete: bool },
    Text,
    Binary,
}

/// The body with its `Content-Encoding` undone when that works (and whether it did).
fn decoded<'a>(side: &Side<'a>, inflate_limit: usize) -> (Cow<'a, [u8]>, bool) {
    let encoding = fields::header(side.headers, "content-encoding");
    match body::content_decoded(encoding, side.body, inflate_limit) {
        Some(inflated) => (Cow::Owned(inflated), true),
        None => (Cow::Borrowed(side.body), false),
    }
}

fn read(side: &Side, bytes: &[u8]) -> Reading {
    let classified = body::classify(bytes);
    if let Some(value) = classified.json {
        return Reading::Json {
            value,
            complete: classified.complete,
        };
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Reading::Binary;
    };
    let form = fields::header(side.headers, "content-type")
        .is_some_and(|t| t.to_ascii_lowercase().contains("x-www-form-urlencoded"));
    if form && !text.is_empty() {
        return Reading::Json {
            value: form_fields(text),
            complete: true,
        };
    }
    Reading::Text
}

/// A form body as the object of its fields (a field sent more than once: the list of its
/// values).
fn form_fields(text: &str) -> Value {
    let mut fields = Map::new();
    for (key, value) in form_urlencoded::parse(text.as_bytes()) {
        let value = Value::String(value.into_owned());
        match fields.get_mut(key.as_ref()) {
            Some(Value::Array(values)) => values.push(value),
            Some(first) => *first = Value::Array(vec![first.take(), value]),
            None => {
                fields.insert(key.into_owned(), value);
            }
        }
    }
    Value::Object(fields)
}

pub fn compare_bodies(a: Side, b: Side, inflate_limit: usize) -> BodyDiff {
    let (a_bytes, a_decoded) = decoded(&a, inflate_limit);
    let (b_bytes, b_decoded) = decoded(&b, inflate_limit);
    let diff = match (read(&a, &a_bytes), read(&b, &b_bytes)) {
        (
            Reading::Json {
                value: a_value,
                complete: a_complete,
            },
            Reading::Json {
                value: b_value,
                complete: b_complete,
            },
        ) => BodyChanges::Json(json_diff(&a_value, &b_value, !(a_complete && b_complete))),
        (Reading::Binary, _) | (_, Reading::Binary) => {
            BodyChanges::Binary(binary_diff(&a_bytes, &b_bytes))
        }
        // Text on both sides (one may be JSON): the texts as they are.
        _ => BodyChanges::Text(text_diff(
            &String::from_utf8_lossy(&a_bytes),
            &String::from_utf8_lossy(&b_bytes),
        )),
    };
    BodyDiff {
        identical: a.body == b.body,
        a_size: a.body.len(),
        b_size: b.body.len(),
        decoded: a_decoded || b_decoded,
        diff,
    }
}

// ---- JSON -----------------------------------------------------------------------------

/// Records what `treediff` walks into: the path so far, the changes up to the cap, the
/// leaves that did not change.
struct Recorder {
    path: Vec<Key>,
    changes: Vec<(Vec<Key>, PathChange)>,
    more: usize,
    unchanged: usize,
}

impl Recorder {
    fn record(&mut self, last: Option<&Key>, change: Change, a: Option<&Value>, b: Option<&Value>) {
        if self.changes.len() >= MOST_CHANGES {
            self.more += 1;
            return;
        }
        let mut keys = self.path.clone();
        keys.extend(last.cloned());
        let path = render_path(&keys);
        self.changes.push((
            keys,
            PathChange {
                path,
                change,
                a: a.cloned(),
                b: b.cloned(),
            },
        ));
    }
}

impl<'a> treediff::Delegate<'a, Key, Value> for Recorder {
    fn push(&mut self, key: &Key) {
        self.path.push(key.clone());
    }
    fn pop(&mut self) {
        self.path.pop();
    }
    fn removed<'b>(&mut self, key: &'b Key, value: &'a Value) {
        self.record(Some(key), Change::Removed, Some(value), None);
    }
    fn added<'b>(&mut self, key: &'b Key, value: &'a Value) {
        self.record(Some(key), Change::Added, None, Some(value));
    }
    fn unchanged(&mut self, value: &'a Value) {
        self.unchanged += leaves(value);
    }
    fn modified(&mut self, old: &'a Value, new: &'a Value) {
        self.record(None, Change::Changed, Some(old), Some(new));
    }
}

fn leaves(value: &Value) -> usize {
    match value {
        Value::Array(items) if !items.is_empty() => items.iter().map(leaves).sum(),
        Value::Object(map) if !map.is_empty() => map.values().map(leaves).sum(),
        _ => 1,
    }
}

pub fn json_diff(a: &Value, b: &Value, partial: bool) -> JsonDiff {
    let mut recorder = Recorder {
        path: Vec::new(),
        changes: Vec::new(),
        more: 0,
        unchanged: 0,
    };
    treediff::diff(a, b, &mut recorder);
    // By path (indexes as numbers), not in the walk's order of changed, added, removed.
    recorder.changes.sort_by(|(x, _), (y, _)| x.cmp(y));
    JsonDiff {
        changes: recorder.changes.into_iter().map(|(_, c)| c).collect(),
        more: recorder.more,
        unchanged: recorder.unchanged,
        partial,
    }
}

/// `a.b[0]["c.d"]`.
fn render_path(keys: &[Key]) -> String {
    let mut out = String::new();
    for key in keys {
        match key {
            Key::Index(index) => {
                out.push('[');
                out.push_str(&index.to_string());
                out.push(']');
            }
            Key::String(name) if plain_key(name) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(name);
            }
            Key::String(name) => {
                out.push('[');
                out.push_str(&serde_json::to_string(name).expect("a string serialises"));
                out.push(']');
            }
        }
    }
    out
}

fn plain_key(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '$' || c == '@')
}

// ---- text -----------------------------------------------------------------------------

fn line_text(raw: &str) -> String {
    let line = raw.trim_end_matches('\n').trim_end_matches('\r');
    match line.char_indices().nth(LONGEST_LINE) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    }
}

pub fn text_diff(a: &str, b: &str) -> TextDiff_ {
    let diff = TextDiff::configure()
        .timeout(TEXT_DIFF_TIMEOUT)
        .diff_lines(a, b);
    let unchanged = diff
        .ops()
        .iter()
        .filter(|op| op.tag() == similar::DiffTag::Equal)
        .map(|op| op.old_range().len())
        .sum();
    let mut hunks = Vec::new();
    let mut listed = 0;
    let mut more = 0;
    // Where the last hunk ended in `a`: what lies between it and the next is folded.
    let mut a_end = 0;
    for group in diff.grouped_ops(CONTEXT_LINES) {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            continue;
        };
        let mut hunk = Hunk {
            a_line: first.old_range().start + 1,
            b_line: first.new_range().start + 1,
            folded_before: first.old_range().start - a_end,
            lines: Vec::new(),
        };
        a_end = last.old_range().end;
        for op in &group {
            for change in diff.iter_changes(op) {
                let tag = match change.tag() {
                    ChangeTag::Equal => LineTag::Same,
                    ChangeTag::Delete => LineTag::Removed,
                    ChangeTag::Insert => LineTag::Added,
                };
                if listed >= MOST_TEXT_LINES {
                    if tag != LineTag::Same {
                        more += 1;
                    }
                    continue;
                }
                listed += 1;
                hunk.lines.push(Line {
                    tag,
                    text: line_text(change.value()),
                });
            }
        }
        if !hunk.lines.is_empty() {
            hunks.push(hunk);
        }
    }
    TextDiff_ {
        hunks,
        more,
        unchanged,
    }
}

// ---- binary ---------------------------------------------------------------------------

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub fn binary_diff(a: &[u8], b: &[u8]) -> BinaryDiff {
    let first_difference = a
        .iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .or_else(|| (a.len() != b.len()).then(|| a.len().min(b.len())));
    BinaryDiff {
        identical: first_difference.is_none(),
        first_difference,
        a_sha256: sha256_hex(a),
        b_sha256: sha256_hex(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn headers_by_name_in_any_case() {
        let a = headers(&[
            ("Content-Type", "application/json"),
            ("X-Attempt", "1"),
            ("X-Gone", "x"),
            ("Accept", "a"),
            ("accept", "b"),
        ]);
        let b = headers(&[
            ("content-type", "application/json"),
            ("x-attempt", "2"),
            ("X-New", "y"),
            ("ACCEPT", "a, b"),
        ]);
        let diff = compare_headers(&a, &b);
        let summary: Vec<_> = diff
            .changes
            .iter()
            .map(|c| (c.name.as_str(), c.change, c.a.as_deref(), c.b.as_deref()))
            .collect();
        assert_eq!(
            summary,
            [
                ("X-Attempt", Change::Changed, Some("1"), Some("2")),
                ("X-Gone", Change::Removed, Some("x"), None),
                ("X-New", Change::Added, None, Some("y")),
            ]
        );
        assert_eq!(
            diff.unchanged,
            [
                ("Content-Type".to_string(), "application/json".to_string()),
                ("Accept".to_string(), "a, b".to_string()),
            ],
            "a repeated header is its values joined"
        );
    }

    #[test]
    fn json_by_path_with_old_and_new_values() {
        let a = json!({"order": {"total": 4700, "items": [{"id": 1}, {"id": 2}]}, "gone": [1], "coupon": null, "a.b": 1});
        let b = json!({"order": {"total": 2700, "items": [{"id": 1}, {"id": 3}, {"id": 4}]}, "coupon": {"code": "X"}, "a.b": 2});
        let diff = json_diff(&a, &b, false);
        let paths: Vec<_> = diff
            .changes
            .iter()
            .map(|c| (c.path.as_str(), c.change, c.a.clone(), c.b.clone()))
            .collect();
        assert_eq!(
            paths,
            [
                ("[\"a.b\"]", Change::Changed, Some(json!(1)), Some(json!(2))),
                (
                    "coupon",
                    Change::Changed,
                    Some(json!(null)),
                    Some(json!({"code": "X"}))
                ),
                ("gone", Change::Removed, Some(json!([1])), None),
                (
                    "order.items[1].id",
                    Change::Changed,
                    Some(json!(2)),
                    Some(json!(3))
                ),
                (
                    "order.items[2]",
                    Change::Added,
                    None,
                    Some(json!({"id": 4}))
                ),
                (
                    "order.total",
                    Change::Changed,
                    Some(json!(4700)),
                    Some(json!(2700))
                ),
            ]
        );
        assert_eq!(diff.unchanged, 1, "order.items[0].id");
        assert_eq!(diff.more, 0);
    }

    #[test]
    fn changes_past_the_cap_are_counted() {
        let a = Value::Array((0..MOST_CHANGES + 10).map(|i| json!(i)).collect());
        let b = Value::Array((0..MOST_CHANGES + 10).map(|i| json!(i + 1)).collect());
        let diff = json_diff(&a, &b, false);
        assert_eq!(diff.changes.len(), MOST_CHANGES);
        assert_eq!(diff.more, 10);
        assert_eq!(diff.changes[2].path, "[2]", "indexes sort as numbers");
    }

    #[test]
    fn text_by_line_with_unchanged_runs_folded() {
        let a: String = (1..=20).map(|i| format!("line {i}\n")).collect();
        let b = a.replace("line 10\n", "line ten\n");
        let diff = text_diff(&a, &b);
        assert_eq!(diff.unchanged, 19);
        assert_eq!(diff.hunks.len(), 1);
        let hunk = &diff.hunks[0];
        assert_eq!((hunk.a_line, hunk.b_line, hunk.folded_before), (7, 7, 6));
        let changed: Vec<_> = hunk
            .lines
            .iter()
            .filter(|l| l.tag != LineTag::Same)
            .map(|l| (l.tag, l.text.as_str()))
            .collect();
        assert_eq!(
            changed,
            [(LineTag::Removed, "line 10"), (LineTag::Added, "line ten")]
        );
        assert_eq!(hunk.lines.len(), 8, "three lines of context each side");
    }

    #[test]
    fn a_long_text_diff_is_cut_and_counted() {
        let a: String = (0..MOST_TEXT_LINES).map(|i| format!("{i}\n")).collect();
        let b: String = (0..MOST_TEXT_LINES).map(|i| format!("x{i}\n")).collect();
        let diff = text_diff(&a, &b);
        let listed: usize = diff.hunks.iter().map(|h| h.lines.len()).sum();
        assert_eq!(listed, MOST_TEXT_LINES);
        assert_eq!(listed + diff.more, 2 * MOST_TEXT_LINES);
        let long = "y".repeat(LONGEST_LINE + 5);
        let diff = text_diff("a\n", &long);
        assert_eq!(
            diff.hunks[0].lines[1].text.chars().count(),
            LONGEST_LINE + 1
        );
    }

    #[test]
    fn forms_compare_by_field() {
        let form = headers(&[("Content-Type", "application/x-www-form-urlencoded")]);
        let diff = compare_bodies(
            Side {
                headers: &form,
                body: b"email=a%40b.c&tag=x&tag=y",
            },
            Side {
                headers: &form,
                body: b"email=c%40d.e&tag=x&tag=y",
            },
            1_000,
        );
        let BodyChanges::Json(json) = diff.diff else {
            panic!("{diff:?}")
        };
        assert_eq!(json.changes.len(), 1);
        assert_eq!(json.changes[0].path, "email");
        assert_eq!(json.changes[0].b, Some(json!("c@d.e")));
        assert_eq!(json.unchanged, 2, "tag[0], tag[1]");
    }

    #[test]
    fn binary_is_told_apart_never_shown() {
        let diff = binary_diff(&[0, 1, 2, 0xff], &[0, 1, 3, 0xff, 4]);
        assert!(!diff.identical);
        assert_eq!(diff.first_difference, Some(2));
        assert_eq!(binary_diff(&[0, 1], &[0, 1, 2]).first_difference, Some(2));
        let same = binary_diff(&[0xff; 4], &[0xff; 4]);
        assert!(same.identical);
        assert_eq!(same.first_difference, None);
        assert_eq!(same.a_sha256, same.b_sha256);
    }
}
