//! Property tests of the erasure matcher: for random distinct addresses A and B,
//! forgetting A never takes a delivery that mentions only B, and always takes one that
//! mentions A, in every encoding a sender uses.

use std::io::Write;

use bytes::Bytes;
use proptest::prelude::*;

use super::RawDelivery;
use super::mentions::Address;

/// Cases per property; `PROPTEST_CASES` overrides it (`make soak` runs more).
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(512)
}

/// A name part: ASCII and accented letters, digits, and the punctuation names use.
fn local() -> impl Strategy<Value = String> {
    let atom = "[a-zA-Z0-9éüøçÉ]{1,6}";
    (atom, proptest::option::of(("[._+'-]", atom))).prop_map(|(head, tail)| match tail {
        Some((sep, rest)) => format!("{head}{sep}{rest}"),
        None => head,
    })
}

fn domain() -> impl Strategy<Value = String> {
    ("[a-z0-9ü]{1,5}(-[a-z0-9]{1,3})?", "(\\.[a-z]{2,4}){1,2}")
        .prop_map(|(name, tld)| format!("{name}{tld}"))
}

fn address() -> impl Strategy<Value = String> {
    (local(), domain()).prop_map(|(l, d)| format!("{l}@{d}"))
}

/// Two addresses: B unrelated to A, or B holding A inside it (`xa@d.com`, `x.a@d.com`,
/// `a@d.com.uk`, `a@d.community`): the cases a substring match got wrong.
fn distinct_pair() -> impl Strategy<Value = (String, String)> {
    address().prop_flat_map(|a| {
        let (local, domain) = a
            .split_once('@')
            .map(|(l, d)| (l.to_string(), d.to_string()))
            .unwrap();
        let whole = a.clone();
        let around = (0..4usize, "[a-z0-9]{1,3}").prop_map(move |(how, extra)| match how {
            0 => format!("{extra}{whole}"),
            1 => format!("{extra}.{whole}"),
            2 => format!("{local}@{domain}.{extra}"),
            _ => format!("{local}@{domain}{extra}"),
        });
        (Just(a), prop_oneof![address(), around])
    })
}

/// The ways a sender writes an address into a delivery.
#[derive(Debug, Clone, Copy)]
enum Encoding {
    Raw,
    Upper,
    Decomposed,
    JsonEscaped,
    PercentInForm,
    PercentInQuery,
    PercentInPath,
    PercentTwice,
    Header,
    GzipMembers,
    GzipStacked,
}

const ENCODINGS: [Encoding; 11] = [
    Encoding::Raw,
    Encoding::Upper,
    Encoding::Decomposed,
    Encoding::JsonEscaped,
    Encoding::PercentInForm,
    Encoding::PercentInQuery,
    Encoding::PercentInPath,
    Encoding::PercentTwice,
    Encoding::Header,
    Encoding::GzipMembers,
    Encoding::GzipStacked,
];

fn json_escaped(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

fn percent(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn delivery(
    path: &str,
    query: Option<String>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
) -> RawDelivery {
    RawDelivery {
        id: "d".into(),
        received_at: 0,
        endpoint_id: "ep".into(),
        endpoint_name: "ep".into(),
        method: "POST".into(),
        path: path.into(),
        query,
        headers,
        remote_addr: None,
        client_ip: None,
        via_tunnel: false,
        body: Bytes::from(body),
    }
}

/// A delivery mentioning `address` (among other text) the way `encoding` writes it.
fn mentioning(address: &str, encoding: Encoding) -> RawDelivery {
    let json = |written: &str| format!(r#"{{"note":"from {written} today","n":1}}"#).into_bytes();
    let json_type = vec![("content-type".to_string(), "application/json".to_string())];
    match encoding {
        Encoding::Raw => delivery("/h/t", None, json_type, json(address)),
        Encoding::Upper => delivery("/h/t", None, json_type, json(&address.to_uppercase())),
        Encoding::Decomposed => {
            let nfd = icu_normalizer::DecomposingNormalizer::new_nfd().normalize(address);
            delivery("/h/t", None, json_type, json(&nfd))
        }
        Encoding::JsonEscaped => delivery("/h/t", None, json_type, json(&json_escaped(address))),
        Encoding::PercentInForm => delivery(
            "/h/t",
            None,
            vec![(
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            )],
            format!("name=Ann+Lee&email={}&x=1", percent(address)).into_bytes(),
        ),
        Encoding::PercentInQuery => delivery(
            "/h/t",
            Some(format!("e={}", percent(address))),
            vec![],
            vec![],
        ),
        Encoding::PercentInPath => delivery(
            &format!("/h/t/contacts/{}", percent(address)),
            None,
            vec![],
            vec![],
        ),
        Encoding::PercentTwice => delivery(
            "/h/t",
            Some(format!("e={}", percent(&percent(address)))),
            vec![],
            vec![],
        ),
        Encoding::Header => delivery(
            "/h/t",
            None,
            vec![("x-contact".into(), format!("<{address}>"))],
            vec![],
        ),
        Encoding::GzipMembers => {
            let text = json(address);
            let (first, second) = text.split_at(text.len() / 2);
            let mut body = gzip(first);
            body.extend(gzip(second));
            delivery(
                "/h/t",
                None,
                vec![("content-encoding".into(), "gzip".into())],
                body,
            )
        }
        Encoding::GzipStacked => delivery(
            "/h/t",
            None,
            vec![("content-encoding".into(), "gzip, gzip".into())],
            gzip(&gzip(&json(address))),
        ),
    }
}

const LIMIT: usize = 1024 * 1024;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn forgetting_a_takes_what_mentions_a_in_every_encoding(a in address()) {
        let forgotten = Address::parse(&a).expect("generated addresses are addresses");
        for encoding in ENCODINGS {
            prop_assert!(
                forgotten.mentioned_in(&mentioning(&a, encoding), LIMIT),
                "{a} written {encoding:?} is found"
            );
        }
    }

    #[test]
    fn forgetting_a_never_takes_what_mentions_only_b((a, b) in distinct_pair()) {
        let forgotten = Address::parse(&a).expect("generated addresses are addresses");
        let other = Address::parse(&b).expect("generated addresses are addresses");
        prop_assume!(forgotten != other);
        for encoding in ENCODINGS {
            prop_assert!(
                !forgotten.mentioned_in(&mentioning(&b, encoding), LIMIT),
                "forgetting {a} leaves {b} written {encoding:?}"
            );
        }
    }

    #[test]
    fn a_longer_address_around_a_is_not_a(a in address(), prefix in "[a-z0-9]{1,3}[._+-]?", suffix in "\\.[a-z]{2}|[a-z0-9]{1,3}") {
        let forgotten = Address::parse(&a).expect("generated addresses are addresses");
        let (local, domain) = a.split_once('@').unwrap();
        for longer in [format!("{prefix}{a}"), format!("{local}@{domain}{suffix}")] {
            prop_assert!(!forgotten.mentioned_in(&mentioning(&longer, Encoding::Raw), LIMIT), "{longer} is not {a}");
            prop_assert!(!forgotten.mentioned_in(&mentioning(&longer, Encoding::PercentInForm), LIMIT), "{longer} (form) is not {a}");
        }
    }
}
