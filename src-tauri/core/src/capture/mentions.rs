//! Where a person's address appears in a delivery: the one place that decides what
//! forgetting them erases. An address is taken whole (`ann@x.com` is not in
//! `joann@x.com` nor in `ann@x.com.au`), in any case and Unicode form, and in every
//! encoding [`crate::capture::contents`] undoes.

use crate::capture::RawDelivery;
use crate::capture::contents;
use crate::capture::fields::fold;

/// One whole email address, folded: trimmed, lower-cased and in Unicode NFC, so every
/// form of it a sender writes compares equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address(String);

/// Longest address (RFC 5321: 64 for the local part, 254 in all).
const MOST_LOCAL: usize = 64;
const MOST_ADDRESS: usize = 254;
/// Characters an unquoted local part holds besides letters, digits and dots (RFC 5322
/// `atext`).
const LOCAL_SPECIALS: &str = "!#$%&'*+/=?^_`{|}~-";

impl Address {
    /// The address in `input` (trimmed, any case, any Unicode form), or why it is not one:
    /// exactly one `@`, a local part and a domain with at least one dot, no spaces.
    pub fn parse(input: &str) -> Result<Address, String> {
        let folded = fold(input.trim()).into_owned();
        let refuse = |why: &str| {
            Err(format!(
                "{input:?} is not an email address ({why}): give the person's whole address, like ann@example.com"
            ))
        };
        if folded.is_empty() {
            return refuse("it is empty");
        }
        if folded.len() > MOST_ADDRESS {
            return refuse("it is longer than an address can be");
        }
        let Some((local, domain)) = folded.split_once('@') else {
            return refuse("it has no @");
        };
        if domain.contains('@') {
            return refuse("it has more than one @");
        }
        if local.is_empty() {
            return refuse("nothing before the @");
        }
        if local.len() > MOST_LOCAL {
            return refuse("the part before the @ is longer than 64 bytes");
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return refuse("a dot at the start or end of the name, or two in a row");
        }
        if !local
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || LOCAL_SPECIALS.contains(c))
        {
            return refuse("the part before the @ holds a space or a character addresses do not");
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 {
            return refuse("the domain has no dot");
        }
        if labels.iter().any(|label| {
            label.is_empty()
                || label.starts_with('-')
                || label.ends_with('-')
                || !label.chars().all(|c| c.is_alphanumeric() || c == '-')
        }) {
            return refuse("the domain is not a host name");
        }
        Ok(Address(folded))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the address stands whole in this delivery, in any part and encoding.
    pub fn mentioned_in(&self, raw: &RawDelivery, inflate_limit: usize) -> bool {
        contents::any_view(raw, inflate_limit, |view| self.stands_whole_in(view))
    }

    /// Whether the address stands whole somewhere in `text` (any case or Unicode form).
    pub fn stands_whole_in(&self, text: &str) -> bool {
        let folded = fold(text);
        let needle = self.0.as_str();
        let mut from = 0;
        while let Some(found) = folded[from..].find(needle) {
            let start = from + found;
            let end = start + needle.len();
            if bounded(&folded, start, end) {
                return true;
            }
            // The next place it could start: past this match's first character.
            from = start + folded[start..].chars().next().map_or(1, char::len_utf8);
        }
        false
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `text[start..end]` is a whole address: what comes before cannot continue its
/// local part, what comes after cannot continue its domain.
fn bounded(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back();
    let mut after = text[end..].chars();
    let next = after.next();
    // `'ann@x.com'`: quoted. (`o'ann@x.com` is another address: `'` belongs to names.)
    let quoted = before == Some('\'') && next == Some('\'');
    let local_continues = before.is_some_and(|c| c.is_alphanumeric() || ".+_-'".contains(c));
    let domain_continues = match next {
        Some(c) if c.is_alphanumeric() || c == '-' || c == '_' || c == '@' => true,
        // `ann@x.com.au` continues; `ann@x.com.` ends a sentence.
        Some('.') => after
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '-'),
        _ => false,
    };
    (quoted || !local_continues) && !domain_continues
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann() -> Address {
        Address::parse("ann@x.com").unwrap()
    }

    #[test]
    fn only_whole_addresses_are_taken() {
        for refused in [
            "",
            " ",
            "\t\n",
            "@example.com",
            "a",
            "ann@",
            "ann@x",
            "ann@x..com",
            "a b@x.com",
            "ann@@x.com",
            "a@b@x.com",
            ".ann@x.com",
            "ann.@x.com",
            "ann@-x.com",
            "ann@x.com.",
            "%",
            "*",
            "ann@x .com",
        ] {
            assert!(Address::parse(refused).is_err(), "{refused:?} is refused");
        }
        assert_eq!(
            Address::parse("  Zoe\u{301}@X.com ").unwrap().as_str(),
            "zoé@x.com",
            "trimmed, lower-cased, NFC"
        );
        assert!(Address::parse("o'brien+news@mail.example.co.uk").is_ok());
    }

    #[test]
    fn a_longer_address_holding_it_is_not_it() {
        for other in [
            "joann@x.com",
            "marie-ann@x.com",
            "marie.ann@x.com",
            "x+ann@x.com",
            "o'ann@x.com",
            "ann@x.com.au",
            "ann@x.community",
            "ann@x.com-mail.org",
        ] {
            assert!(!ann().stands_whole_in(other), "{other} is someone else");
            assert!(
                !ann().stands_whole_in(&format!("{{\"email\":\"{other}\"}}")),
                "{other} in JSON is someone else"
            );
        }
    }

    #[test]
    fn the_address_is_found_between_delimiters_in_any_case() {
        for text in [
            "ann@x.com",
            "<ANN@X.COM>",
            "to: Ann@x.com, bob@y.org",
            "{\"email\":\"ann@x.com\"}",
            "'ann@x.com'",
            "/contacts/ann@x.com/tags",
            "email=ann@x.com&n=1",
            "write to ann@x.com.",
            "joann@x.com ann@x.com",
        ] {
            assert!(ann().stands_whole_in(text), "in {text:?}");
        }
    }

    #[test]
    fn unicode_forms_fold_alike() {
        let zoe = Address::parse("zoé@x.com").unwrap();
        assert!(
            zoe.stands_whole_in("ZOE\u{301}@X.COM"),
            "decomposed, upper-case"
        );
        assert!(zoe.stands_whole_in("Zoé@x.com"));
        assert!(
            !zoe.stands_whole_in("zoe@x.com"),
            "no accent is another address"
        );
    }
}
