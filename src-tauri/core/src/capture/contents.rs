//! What a delivery contains, as a reader would see it: the bytes as stored and every form
//! a sender's encoding hides them in. The erasure matcher ([`crate::capture::mentions`])
//! and the API-token guard ([`crate::capture::token_guard`]) look through these views, so
//! what one of them finds, the other finds too.
//!
//! Covered: the path, query, header names and values and the body; the body with its
//! whole `Content-Encoding` stack undone (gzip with several members, deflate), within the
//! inflate limit ingest has; JSON string escapes (`\u0040`, surrogate pairs, `\/`);
//! percent-encoding (`%40`, `%2B`), also twice over, with `+` read as a space in query
//! strings and form bodies (as well as as itself). Not covered: base64 and other binary-to-text wrappings, HTML
//! entities, quoted-printable, encodings other than UTF-8.

use std::borrow::Cow;

use crate::capture::RawDelivery;
use crate::capture::body;
use crate::capture::fields;

/// Decoders applied to a text, one on another, at most this deep (`%2540` is `%40`
/// encoded again, inside a JSON string).
const DEPTH: usize = 3;
/// Most views of one text: each decoder runs only where it changes something, so real
/// deliveries have two or three.
const MOST_VIEWS: usize = 12;

/// Each part of a delivery (path, query, every header name and value, the body as stored
/// and content-decoded) in every decoded form, given to `visit` until it returns true.
/// Returns whether it did.
pub fn any_view(
    raw: &RawDelivery,
    inflate_limit: usize,
    mut visit: impl FnMut(&str) -> bool,
) -> bool {
    // Where `+` stands for a space: a query string and a form body (and there only before
    // anything is decoded: a `+` that was `%2B` is a plus).
    let form_body = fields::header(&raw.headers, "content-type")
        .is_some_and(|t| t.to_ascii_lowercase().contains("x-www-form-urlencoded"));
    let mut parts: Vec<(Cow<'_, [u8]>, bool)> = Vec::with_capacity(4 + raw.headers.len() * 2);
    parts.push((Cow::Borrowed(raw.path.as_bytes()), false));
    if let Some(query) = &raw.query {
        parts.push((Cow::Borrowed(query.as_bytes()), true));
    }
    for (name, value) in &raw.headers {
        parts.push((Cow::Borrowed(name.as_bytes()), false));
        parts.push((Cow::Borrowed(value.as_bytes()), false));
    }
    parts.push((Cow::Borrowed(&raw.body), form_body));
    let encoding = fields::header(&raw.headers, "content-encoding");
    if let Some(inflated) = body::content_decoded(encoding, &raw.body, inflate_limit) {
        parts.push((Cow::Owned(inflated), form_body));
    }
    parts
        .iter()
        .any(|(part, form)| any_view_of(part, *form, &mut visit))
}

/// `bytes` as text, then each decoded form of it, given to `visit` until it returns true.
/// `form`: the text is form-encoded (`+` is a space).
pub fn any_view_of(bytes: &[u8], form: bool, visit: &mut impl FnMut(&str) -> bool) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let mut seen: Vec<String> = Vec::new();
    let mut frontier: Vec<(String, bool)> = vec![(text.into_owned(), form)];
    for _ in 0..=DEPTH {
        let mut next = Vec::new();
        for (view, form) in frontier {
            if seen.contains(&view) {
                continue;
            }
            if visit(&view) {
                return true;
            }
            if seen.len() + next.len() < MOST_VIEWS {
                next.extend(json_unescaped(&view).map(|v| (v, form)));
                next.extend(percent_decoded(&view, false).map(|v| (v, false)));
                if form {
                    next.extend(percent_decoded(&view, true).map(|v| (v, false)));
                }
            }
            seen.push(view);
        }
        if next.is_empty() {
            break;
        }
        frontier = next;
    }
    false
}

/// JSON string escapes resolved wherever they stand (a payload nests JSON in strings, a
/// form field carries JSON): `None` when there is none.
pub fn json_unescaped(text: &str) -> Option<String> {
    if !text.contains('\\') {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.char_indices().peekable();
    let bytes = text.as_bytes();
    let mut changed = false;
    while let Some((at, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(&(_, escape)) = chars.peek() else {
            out.push(c);
            break;
        };
        let simple = match escape {
            '"' => Some('"'),
            '\\' => Some('\\'),
            '/' => Some('/'),
            'b' => Some('\u{8}'),
            'f' => Some('\u{c}'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            _ => None,
        };
        if let Some(unescaped) = simple {
            chars.next();
            out.push(unescaped);
            changed = true;
            continue;
        }
        if escape == 'u'
            && let Some(unit) = hex4(bytes, at + 2)
        {
            // A high surrogate followed by `\uDC00`..: one character.
            let low = (0xD800..0xDC00)
                .contains(&unit)
                .then(|| {
                    (bytes.get(at + 6) == Some(&b'\\') && bytes.get(at + 7) == Some(&b'u'))
                        .then(|| hex4(bytes, at + 8))
                        .flatten()
                })
                .flatten()
                .filter(|low| (0xDC00..0xE000).contains(low));
            let (decoded, length) = match low {
                Some(low) => (
                    char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)),
                    12,
                ),
                None => (char::from_u32(unit), 6),
            };
            out.push(decoded.unwrap_or(char::REPLACEMENT_CHARACTER));
            // The backslash is consumed; skip the rest of the escape.
            for _ in 1..length {
                chars.next();
            }
            changed = true;
            continue;
        }
        out.push(c);
    }
    changed.then_some(out)
}

fn hex4(bytes: &[u8], at: usize) -> Option<u32> {
    let digits = bytes.get(at..at + 4)?;
    if !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

/// Percent-encoding undone (`plus_is_space`: as a form body reads `+`); `None` when
/// nothing changed.
pub fn percent_decoded(text: &str, plus_is_space: bool) -> Option<String> {
    let spaces = plus_is_space && text.contains('+');
    if !text.contains('%') && !spaces {
        return None;
    }
    let spaced: Cow<'_, str> = if plus_is_space {
        Cow::Owned(text.replace('+', " "))
    } else {
        Cow::Borrowed(text)
    };
    let decoded = percent_encoding::percent_decode_str(&spaced).decode_utf8_lossy();
    (decoded != text).then(|| decoded.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn views(text: &str) -> Vec<String> {
        let mut all = Vec::new();
        any_view_of(text.as_bytes(), true, &mut |view| {
            all.push(view.to_string());
            false
        });
        all
    }

    #[test]
    fn json_escapes_resolve_with_surrogate_pairs() {
        assert_eq!(
            json_unescaped(r#"zo\u00e9\u0040x.com \/ \ud83d\ude00 \"q\""#).as_deref(),
            Some("zoé@x.com / 😀 \"q\"")
        );
        assert_eq!(json_unescaped("plain"), None, "nothing to resolve");
        assert_eq!(
            json_unescaped(r"\ud83d alone \u12").as_deref(),
            Some("\u{fffd} alone \\u12"),
            "a lone surrogate becomes U+FFFD, a short escape stays"
        );
    }

    #[test]
    fn percent_encoding_resolves_with_and_without_plus_as_space() {
        assert_eq!(
            percent_decoded("ann%2Btag%40x.com", false).as_deref(),
            Some("ann+tag@x.com")
        );
        assert_eq!(
            percent_decoded("name=Ann+Lee&e=a%40b.c", true).as_deref(),
            Some("name=Ann Lee&e=a@b.c")
        );
        assert_eq!(
            percent_decoded("100%", false),
            None,
            "a stray % stays as it is"
        );
    }

    #[test]
    fn views_nest_encodings_a_few_deep() {
        let all = views(r#"{"u":"https:\/\/x.io\/?e=ann%2540x.com"}"#);
        assert!(
            all.iter().any(|v| v.contains("e=ann@x.com")),
            "JSON, then percent twice: {all:?}"
        );
        assert_eq!(
            views("plain text"),
            vec!["plain text"],
            "one view when nothing is encoded"
        );
    }
}
