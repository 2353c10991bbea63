//! What a body is (JSON, text, binary, empty), its content-decoded form for display, and
//! the text the full-text index sees. Bodies themselves are never altered.

use std::io::Read;

use serde_json::Value;

/// How a body is carried in event JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// Classifies the wire bytes and returns the parsed JSON when there is some.
/// JSON inside surrounding whitespace is still parsed (for decoding) but carried as text.
pub fn classify(bytes: &[u8]) -> (BodyKind, Option<Value>) {
    if bytes.is_empty() {
        return (BodyKind::Empty, None);
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return (BodyKind::Binary, None);
    };
    let trimmed = text.trim_matches(|c: char| c.is_ascii_whitespace());
    match serde_json::from_str::<Value>(trimmed).ok() {
        Some(value) if trimmed.len() == text.len() => (BodyKind::Json, Some(value)),
        Some(value) => (BodyKind::Text, Some(value)),
        None => (BodyKind::Text, None),
    }
}

/// The body after undoing `Content-Encoding` (gzip, deflate), for display and decoding
/// only. `None` when the body is not encoded, the encoding is unknown, it is corrupt, or it
/// would inflate past `limit` bytes (a gzip bomb stays a small stored blob).
pub fn content_decoded(encoding: Option<&str>, bytes: &[u8], limit: usize) -> Option<Vec<u8>> {
    let encoding = encoding?.trim().to_ascii_lowercase();
    let reader: Box<dyn Read + '_> = match encoding.as_str() {
        "gzip" | "x-gzip" => Box::new(flate2::read::GzDecoder::new(bytes)),
        "deflate" => Box::new(flate2::read::ZlibDecoder::new(bytes)),
        _ => return None,
    };
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
        let (kind, value) = classify(br#"{"a":"cr\u00e9er"}"#);
        assert_eq!(kind, BodyKind::Json);
        assert_eq!(
            value.unwrap()["a"],
            "créer",
            "escapes resolve in the parsed view"
        );
    }

    #[test]
    fn json_with_a_trailing_newline_is_text_but_still_parsed() {
        let (kind, value) = classify(b"{\"a\":1}\n");
        assert_eq!(
            kind,
            BodyKind::Text,
            "surrounding whitespace would be lost by a JSON reader"
        );
        assert!(value.is_some(), "it still decodes as JSON");
    }

    #[test]
    fn other_bodies() {
        assert_eq!(classify(b"").0, BodyKind::Empty);
        assert_eq!(classify(b"email=a%40b.c").0, BodyKind::Text);
        assert_eq!(classify(&[0xff, 0xfe, 0x00]).0, BodyKind::Binary);
        assert_eq!(
            classify(b"{\"a\":").0,
            BodyKind::Text,
            "truncated JSON is text"
        );
        assert_eq!(
            classify(b"123").0,
            BodyKind::Json,
            "a bare scalar is JSON too"
        );
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let deep = "[".repeat(100_000);
        assert_eq!(classify(deep.as_bytes()).0, BodyKind::Text);
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
    fn search_text_holds_decoded_values() {
        let (_, value) = classify(br#"{"name":"Comment cr\u00e9er","page":"A \/ B","n":583}"#);
        let text = search_text(value.as_ref(), b"");
        assert!(text.contains("Comment créer"));
        assert!(text.contains("A / B"));
        assert!(text.contains("583"));
    }
}
