//! Payload text shown outside the window (desktop notifications): some notification
//! daemons render markup (`<b>`, `<a href>`, `<img>`), and a sender writes the summary.
//! Tags are dropped, what is left of markup is replaced by look-alikes, and invisible
//! characters are written out as the window shows them.

/// Longest text a notification carries.
const MAX_CHARS: usize = 200;

/// `text` with no markup a daemon would obey and no invisible characters.
pub fn for_notification(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_CHARS * 4));
    let mut chars = text.chars().peekable();
    let mut count = 0;
    while let Some(c) = chars.next() {
        if count >= MAX_CHARS {
            out.push('…');
            break;
        }
        match c {
            // A tag: from `<` followed by a letter, `/` or `!`, up to its `>`.
            '<' if chars
                .peek()
                .is_some_and(|next| next.is_ascii_alphabetic() || matches!(next, '/' | '!')) =>
            {
                for skipped in chars.by_ref() {
                    if skipped == '>' {
                        break;
                    }
                }
                continue;
            }
            '<' => out.push('‹'),
            '>' => out.push('›'),
            '&' => out.push('＆'),
            c if is_invisible(c) => out.push_str(&format!("⟨U+{:04X}⟩", c as u32)),
            c => out.push(c),
        }
        count += 1;
    }
    out
}

/// The characters the window writes out rather than draws (see `revealInvisible` in the
/// UI): controls, format characters (bidi overrides, zero-width space...), line and
/// paragraph separators, Hangul fillers. Tab, newline, ZWJ and ZWNJ are text.
fn is_invisible(c: char) -> bool {
    if matches!(c, '\t' | '\n' | '\u{200c}' | '\u{200d}') {
        return false;
    }
    c.is_control()
        || matches!(c,
            '\u{00ad}' | '\u{061c}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}'
            | '\u{115f}' | '\u{1160}' | '\u{3164}' | '\u{ffa0}' | '\u{e0001}'..='\u{e007f}'
            | '\u{0600}'..='\u{0605}' | '\u{06dd}' | '\u{070f}' | '\u{110bd}' | '\u{1bca0}'..='\u{1bca3}'
            | '\u{1d173}'..='\u{1d17a}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_not_passed_on() {
        let text = for_notification(
            "<b>EUR</b> 49 <img src=x onerror=alert(1)> <a href=\"https://evil\">pay</a>",
        );
        assert_eq!(text, "EUR 49  pay");
        assert_eq!(
            for_notification("a < b && c > d"),
            "a ‹ b ＆＆ c › d",
            "what is left of markup cannot form a tag or an entity"
        );
        assert_eq!(for_notification("&lt;b&gt;"), "＆lt;b＆gt;");
        assert_eq!(
            for_notification("<unclosed tag"),
            "",
            "an unclosed tag is dropped whole"
        );
    }

    #[test]
    fn invisible_characters_are_written_out_and_text_is_bounded() {
        assert_eq!(for_notification("Ann\u{202e}gpj.exe"), "Ann⟨U+202E⟩gpj.exe");
        assert_eq!(for_notification("x\u{200b}y\u{0}"), "x⟨U+200B⟩y⟨U+0000⟩");
        let long = for_notification(&"é".repeat(1000));
        assert_eq!(long.chars().count(), MAX_CHARS + 1, "cut with an ellipsis");
    }
}
