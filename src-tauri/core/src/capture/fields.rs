//! Reading values out of a delivery's parts: a header by name, a JSON value by path,
//! and text folded so that two writings of an address compare equal. A leaf: the
//! decoders, the matcher and the sale's worth all read through it.

use std::borrow::Cow;

use icu_normalizer::ComposingNormalizer;
use serde_json::Value;

/// A header's value by name, in any case.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

pub fn at<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(value, |v, key| &v[*key])
}

/// A non-empty string at `path`.
pub fn text_at(value: &Value, path: &[&str]) -> Option<String> {
    at(value, path)
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// A string or number at `path`, as text (ids come as either).
pub fn scalar_at(value: &Value, path: &[&str]) -> Option<String> {
    match at(value, path) {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// Lower-cased and in Unicode NFC: `ZOE\u{301}@X.COM` and `zoé@x.com` fold alike.
pub fn fold(text: &str) -> Cow<'_, str> {
    if text.is_ascii() {
        return if text.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(text.to_ascii_lowercase())
        } else {
            Cow::Borrowed(text)
        };
    }
    let nfc = ComposingNormalizer::new_nfc();
    Cow::Owned(nfc.normalize(&text.to_lowercase()).into_owned())
}
