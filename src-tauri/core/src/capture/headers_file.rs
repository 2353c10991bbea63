//! The headers of a delivery written beside its body as `NAME.headers`: one `Name: value`
//! a line, in order (the fixtures, the bundled samples, `hookscope send`). Parsed here
//! only, for every reader in Rust.

/// The headers in `text`; lines without a name are skipped.
pub fn parse(text: &str) -> Vec<(String, String)> {
    text.lines().filter_map(parse_line).collect()
}

/// One `Name: value` line (the value may hold colons).
pub fn parse_line(line: &str) -> Option<(String, String)> {
    let (name, value) = line.split_once(':')?;
    let name = name.trim();
    (!name.is_empty()).then(|| (name.to_string(), value.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_headers_in_order() {
        assert_eq!(
            parse(
                "Content-Type: application/json\nX-Webhook-Event-Timestamp: 2026-11-28T09:00:00+00:00\n\n: no name\nbroken\n"
            ),
            [
                ("Content-Type".to_string(), "application/json".to_string()),
                (
                    "X-Webhook-Event-Timestamp".to_string(),
                    "2026-11-28T09:00:00+00:00".to_string()
                ),
            ],
            "values keep their colons; lines without a name are skipped"
        );
    }
}
