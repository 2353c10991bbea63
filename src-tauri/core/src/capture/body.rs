//! What a body is (JSON, text, binary, empty), its content-decoded form for display, and
//! the text the full-text index sees. Bodies themselves are never altered.

use std::io::Read;

use serde_json::Value;

/// How a body is carried in event JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ts_rs::TS)]
#[ts(rename_all = "snake_case")]
pub enum BodyKind {
    /// Valid JSON with no surrounding whitespace: embedded verbatim as `body`, so a JSON
    /// parser reading the export gets exactly the bytes that arrived.
    Json,
    /// Valid UTF-8 (including JSON with surrounding whitespace): `body_text`.
    Text,
    /// Anything else: `body_base64`.
    Binary,
    Empty,
}

impl BodyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BodyKind::Json => "json",
            BodyKind::Text => "text",
            BodyKind::Binary => "binary",
            BodyKind::Empty => "empty",
        }
    }

    pub fn parse(text: &str) -> BodyKind {
        match text {
            "json" => BodyKind::Json,
            "text" => BodyKind::Text,
            "empty" => BodyKind::Empty,
            _ => BodyKind::Binary,
        }
    }
}

/// A body's kind and, for JSON, its parsed tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Classified {
    pub kind: BodyKind,
    /// The parsed JSON (also of JSON inside surrounding whitespace, carried as text),
    /// holding at most [`JSON_NODE_BUDGET`] values.
    pub json: Option<Value>,
    /// False when the tree stopped at the budget: what it lacks was checked, not kept.
    pub complete: bool,
}

/// Most JSON values kept in a parsed tree. A webhook has a few hundred; a 10 MiB array of
/// `0,` has five million, and as a full tree took half a gigabyte.
pub const JSON_NODE_BUDGET: usize = 20_000;

/// Classifies the wire bytes and parses the JSON when there is some, as far as
/// [`JSON_NODE_BUDGET`] values. The whole body is always checked, so whether it is JSON
/// does not depend on its size.
pub fn classify(bytes: &[u8]) -> Classified {
    let plain = |kind| Classified {
        kind,
        json: None,
        complete: true,
    };
    if bytes.is_empty() {
        return plain(BodyKind::Empty);
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return plain(BodyKind::Binary);
    };
    let trimmed = text.trim_matches(|c: char| c.is_ascii_whitespace());
    match bounded_json::parse(trimmed, JSON_NODE_BUDGET) {
        Some((value, complete)) => Classified {
            kind: if trimmed.len() == text.len() {
                BodyKind::Json
            } else {
                BodyKind::Text
            },
            json: Some(value),
            complete,
        },
        None => plain(BodyKind::Text),
    }
}

/// What kind of body this is, without keeping any of its JSON.
pub fn kind_of(bytes: &[u8]) -> BodyKind {
    if bytes.is_empty() {
        return BodyKind::Empty;
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return BodyKind::Binary;
    };
    let trimmed = text.trim_matches(|c: char| c.is_ascii_whitespace());
    if trimmed.len() == text.len() && bounded_json::parse(trimmed, 0).is_some() {
        BodyKind::Json
    } else {
        BodyKind::Text
    }
}

/// A JSON parser that keeps at most a given number of values and checks the rest exactly
/// as strictly as `serde_json::Value` would (numbers in range, valid escapes, depth).
mod bounded_json {
    use std::cell::Cell;
    use std::fmt;

    use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
    use serde_json::{Map, Number, Value};

    /// The tree and whether it is whole; `None` when `text` is not JSON.
    pub fn parse(text: &str, budget: usize) -> Option<(Value, bool)> {
        let left = Cell::new(budget);
        let full = Cell::new(false);
        let mut de = serde_json::Deserializer::from_str(text);
        let value = Bounded {
            left: &left,
            full: &full,
        }
        .deserialize(&mut de)
        .ok()?;
        de.end().ok()?;
        Some((value.unwrap_or(Value::Null), !full.get()))
    }

    /// One value: `Some` while the budget lasts, `None` (checked, dropped) after.
    #[derive(Clone, Copy)]
    struct Bounded<'b> {
        left: &'b Cell<usize>,
        full: &'b Cell<bool>,
    }

    impl Bounded<'_> {
        fn take(&self) -> bool {
            match self.left.get() {
                0 => {
                    self.full.set(true);
                    false
                }
                n => {
                    self.left.set(n - 1);
                    true
                }
            }
        }

        fn keep(&self, value: impl FnOnce() -> Value) -> Option<Value> {
            self.take().then(value)
        }
    }

    impl<'de> DeserializeSeed<'de> for Bounded<'_> {
        type Value = Option<Value>;
        fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Option<Value>, D::Error> {
            de.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Bounded<'_> {
        type Value = Option<Value>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any JSON value")
        }

        fn visit_bool<E>(self, v: bool) -> Result<Option<Value>, E> {
            Ok(self.keep(|| Value::Bool(v)))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Option<Value>, E> {
            Ok(self.keep(|| Value::Number(v.into())))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Option<Value>, E> {
            Ok(self.keep(|| Value::Number(v.into())))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Option<Value>, E> {
            Ok(self.keep(|| Number::from_f64(v).map_or(Value::Null, Value::Number)))
        }
        fn visit_str<E>(self, v: &str) -> Result<Option<Value>, E> {
            Ok(self.keep(|| Value::String(v.to_string())))
        }
        fn visit_string<E>(self, v: String) -> Result<Option<Value>, E> {
            Ok(self.keep(|| Value::String(v)))
        }
        fn visit_unit<E>(self) -> Result<Option<Value>, E> {
            Ok(self.keep(|| Value::Null))
        }
        fn visit_none<E>(self) -> Result<Option<Value>, E> {
            Ok(self.keep(|| Value::Null))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<Value>, A::Error> {
            let kept = self.take();
            let mut items = Vec::new();
            while let Some(item) = seq.next_element_seed(self)? {
                if let Some(item) = item.filter(|_| kept) {
                    items.push(item);
                }
            }
            Ok(kept.then_some(Value::Array(items)))
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Value>, A::Error> {
            let kept = self.take();
            let mut members = Map::new();
            while let Some(key) = map.next_key_seed(Key { keep: kept })? {
                let value = map.next_value_seed(self)?;
                if let (Some(key), Some(value)) = (key, value) {
                    members.insert(key, value);
                }
            }
            Ok(kept.then_some(Value::Object(members)))
        }
    }

    /// An object's key: owned only when its object is kept.
    struct Key {
        keep: bool,
    }

    impl<'de> DeserializeSeed<'de> for Key {
        type Value = Option<String>;
        fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Option<String>, D::Error> {
            de.deserialize_str(self)
        }
    }

    impl<'de> Visitor<'de> for Key {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object key")
        }
        fn visit_str<E>(self, v: &str) -> Result<Option<String>, E> {
            Ok(self.keep.then(|| v.to_string()))
        }
    }
}

/// Most codings one body may stack (`gzip, gzip`): more is not a real sender.
const MOST_CODINGS: usize = 4;

/// The body after undoing its whole `Content-Encoding` stack (gzip, with any number of
/// members; deflate, zlib-wrapped or raw), for display and decoding only. `None` when the
/// body is not encoded, a coding is unknown, it is corrupt, or a step would inflate past
/// `limit` bytes (a gzip bomb stays a small stored blob).
pub fn content_decoded(encoding: Option<&str>, bytes: &[u8], limit: usize) -> Option<Vec<u8>> {
    let codings: Vec<String> = encoding?
        .split(',')
        .map(|coding| coding.trim().to_ascii_lowercase())
        .filter(|coding| !coding.is_empty() && coding != "identity")
        .collect();
    if codings.is_empty() || codings.len() > MOST_CODINGS {
        return None;
    }
    // Applied in the order listed: undone from the last.
    let mut current: Option<Vec<u8>> = None;
    for coding in codings.iter().rev() {
        let input = current.as_deref().unwrap_or(bytes);
        current = Some(match coding.as_str() {
            "gzip" | "x-gzip" => inflate(flate2::read::MultiGzDecoder::new(input), limit)?,
            "deflate" => inflate(flate2::read::ZlibDecoder::new(input), limit)
                .or_else(|| inflate(flate2::read::DeflateDecoder::new(input), limit))?,
            _ => return None,
        });
    }
    current
}

fn inflate(reader: impl Read, limit: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let read = reader.take(limit as u64 + 1).read_to_end(&mut out).ok()?;
    (read <= limit).then_some(out)
}

/// Most of a payload worth searching; beyond it the index would cost more than it helps.
const SEARCH_TEXT_LIMIT: usize = 64 * 1024;

/// The text the full-text index holds for a body: JSON string and number values with
/// unicode escapes resolved (so `cr\u00e9er` is found as "créer"), or the text itself.
pub fn search_text(parsed: Option<&Value>, bytes: &[u8]) -> String {
    let mut out = String::new();
    match parsed {
        Some(value) => collect_values(value, &mut out),
        None => {
            if let Ok(text) = std::str::from_utf8(bytes) {
                out.push_str(truncate_at_char(text, SEARCH_TEXT_LIMIT));
            }
        }
    }
    out
}

fn collect_values(value: &Value, out: &mut String) {
    if out.len() >= SEARCH_TEXT_LIMIT {
        return;
    }
    match value {
        Value::String(s) => {
            out.push_str(truncate_at_char(s, SEARCH_TEXT_LIMIT - out.len()));
            out.push('\n');
        }
        Value::Number(n) => {
            out.push_str(&n.to_string());
            out.push('\n');
        }
        Value::Array(items) => items.iter().for_each(|v| collect_values(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_values(v, out)),
        Value::Bool(_) | Value::Null => {}
    }
}

fn truncate_at_char(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn compact_json_is_embeddable() {
        let Classified { kind, json, .. } = classify(br#"{"a":"cr\u00e9er"}"#);
        assert_eq!(kind, BodyKind::Json);
        assert_eq!(
            json.unwrap()["a"],
            "créer",
            "escapes resolve in the parsed view"
        );
    }

    #[test]
    fn json_with_a_trailing_newline_is_text_but_still_parsed() {
        let Classified { kind, json, .. } = classify(b"{\"a\":1}\n");
        assert_eq!(
            kind,
            BodyKind::Text,
            "surrounding whitespace would be lost by a JSON reader"
        );
        assert!(json.is_some(), "it still decodes as JSON");
    }

    #[test]
    fn other_bodies() {
        for (bytes, kind) in [
            (&b""[..], BodyKind::Empty),
            (b"email=a%40b.c", BodyKind::Text),
            (&[0xff, 0xfe, 0x00], BodyKind::Binary),
            (b"{\"a\":", BodyKind::Text),
            (b"123", BodyKind::Json),
            (b"[1e400]", BodyKind::Text),
        ] {
            assert_eq!(
                classify(bytes).kind,
                kind,
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
            assert_eq!(kind_of(bytes), kind, "the same without a tree");
        }
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let deep = "[".repeat(100_000);
        assert_eq!(classify(deep.as_bytes()).kind, BodyKind::Text);
    }

    #[test]
    fn gzip_is_decoded_for_display_within_a_limit() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&vec![b'a'; 10_000]).unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(
            content_decoded(Some("gzip"), &gz, 20_000).unwrap().len(),
            10_000
        );
        assert_eq!(
            content_decoded(Some("gzip"), &gz, 5_000),
            None,
            "a bomb is refused"
        );
        assert_eq!(content_decoded(Some("gzip"), b"not gzip", 5_000), None);
        assert_eq!(content_decoded(None, &gz, 20_000), None);
    }

    #[test]
    fn every_member_and_every_layer_is_undone() {
        let gzip = |data: &[u8]| {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(data).unwrap();
            enc.finish().unwrap()
        };
        let mut members = gzip(b"first half, ");
        members.extend(gzip(b"second half"));
        assert_eq!(
            content_decoded(Some("gzip"), &members, 1_000).as_deref(),
            Some(&b"first half, second half"[..]),
            "a body of two gzip members is read to its end"
        );
        assert_eq!(
            content_decoded(Some("gzip, gzip"), &gzip(&gzip(b"twice")), 1_000).as_deref(),
            Some(&b"twice"[..]),
            "a stack is undone from its last coding"
        );
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        raw.write_all(b"raw deflate").unwrap();
        assert_eq!(
            content_decoded(Some("Deflate"), &raw.finish().unwrap(), 1_000).as_deref(),
            Some(&b"raw deflate"[..]),
            "deflate without its zlib wrapper, as some senders send it"
        );
        assert_eq!(
            content_decoded(Some("gzip, br"), &members, 1_000),
            None,
            "an unknown coding"
        );
        assert_eq!(
            content_decoded(Some("gzip,gzip,gzip,gzip,gzip"), &members, 1_000),
            None,
            "no real sender stacks five"
        );
    }

    #[test]
    fn a_huge_json_body_keeps_a_bounded_tree_and_stays_json() {
        let mut huge = b"[".to_vec();
        for _ in 0..1_000_000 {
            huge.extend_from_slice(b"0,");
        }
        huge.extend_from_slice(b"{\"a\":[1,2]}]");
        let classified = classify(&huge);
        assert_eq!(classified.kind, BodyKind::Json, "all of it was checked");
        assert!(!classified.complete, "the tree stopped at the budget");
        let items = classified.json.unwrap();
        assert_eq!(
            items.as_array().unwrap().len(),
            JSON_NODE_BUDGET - 1,
            "the array and as many of its items as the budget holds"
        );
        let mut broken = huge.clone();
        broken.extend_from_slice(b",");
        assert_eq!(
            classify(&broken).kind,
            BodyKind::Text,
            "an error after the budget still makes it text"
        );
        let mut out_of_range = huge[..huge.len() - 1].to_vec();
        out_of_range.extend_from_slice(b",1e400]");
        assert_eq!(
            classify(&out_of_range).kind,
            BodyKind::Text,
            "as strict as a full parse after the budget too"
        );
    }

    #[test]
    fn a_bounded_tree_is_the_full_tree_when_it_fits() {
        let text = br#"{"type":"contact.tag.added","data":{"a":[1,2.5,"x",null,true,{"b":{}}]},"k":"cr\u00e9er"}"#;
        let classified = classify(text);
        assert!(classified.complete);
        assert_eq!(
            classified.json.unwrap(),
            serde_json::from_slice::<Value>(text).unwrap()
        );
    }

    #[test]
    fn search_text_holds_decoded_values() {
        let json = classify(br#"{"name":"Comment cr\u00e9er","page":"A \/ B","n":583}"#).json;
        let text = search_text(json.as_ref(), b"");
        assert!(text.contains("Comment créer"));
        assert!(text.contains("A / B"));
        assert!(text.contains("583"));
    }
}

/// The largest body Hookscope accepts, in bytes (`--max-body`); every stored body is
/// decoded within it too. A type of its own so that a count of deliveries or a port
/// cannot be passed where it is meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct BodyLimit(usize);

impl BodyLimit {
    /// 10 MiB.
    pub const DEFAULT: BodyLimit = BodyLimit(10 * 1024 * 1024);

    pub const fn bytes(self) -> usize {
        self.0
    }

    /// A limit of `bytes`; none at all (0) is refused.
    pub fn new(bytes: usize) -> Result<BodyLimit, String> {
        if bytes == 0 {
            return Err("a body limit of 0 bytes would refuse every delivery".into());
        }
        Ok(BodyLimit(bytes))
    }
}

impl std::str::FromStr for BodyLimit {
    type Err = String;

    fn from_str(text: &str) -> Result<BodyLimit, String> {
        let bytes: usize = text
            .trim()
            .parse()
            .map_err(|_| format!("{text:?} is not a number of bytes"))?;
        BodyLimit::new(bytes)
    }
}

impl std::fmt::Display for BodyLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}
