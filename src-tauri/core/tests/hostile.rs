//! The ingest port faces the internet: a corpus of malformed and abusive requests, sent
//! over raw sockets to a real server while a well-behaved sender keeps delivering. Each
//! request gets its defined answer in bounded time, the good sender is never refused, and
//! every acknowledged delivery, hostile or not, is stored byte for byte.

use crate::support;

use std::io::Write as _;
use std::time::{Duration, Instant};

use hookscope_core::app;
use hookscope_core::http::listener::ListenerLimits;
use support::{Api, fixture, test_options};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HEAD_TIMEOUT: Duration = Duration::from_secs(2);
const BODY_IDLE: Duration = Duration::from_secs(2);
const BODY_TOTAL: Duration = Duration::from_secs(4);
const WRITE_STALL: Duration = Duration::from_secs(2);
/// What a case may take beyond the limit that ends it (a loaded 2-core machine).
const SLACK: Duration = Duration::from_secs(6);

/// Flood tests hold every slot with silent connections: their probes must all be done
/// before the head timeout frees a slot, even on a loaded machine.
const FLOOD_HEAD_TIMEOUT: Duration = Duration::from_secs(10);

fn flood_limits(max_connections: usize) -> ListenerLimits {
    ListenerLimits {
        header_read: FLOOD_HEAD_TIMEOUT,
        ..limits(max_connections)
    }
}

fn limits(max_connections: usize) -> ListenerLimits {
    ListenerLimits {
        header_read: HEAD_TIMEOUT,
        body_idle: BODY_IDLE,
        body_total: BODY_TOTAL,
        max_connections,
        max_headers: 256,
        write_stall: WRITE_STALL,
        ..ListenerLimits::default()
    }
}

enum Step {
    Send(Vec<u8>),
    Pause(Duration),
    /// The client stops sending (half-close).
    CloseWrite,
}

#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    /// Answers in order (pipelining gives several).
    Answers(Vec<u16>),
    /// Closed without an answer.
    Closed,
}

struct Case {
    name: &'static str,
    steps: Vec<Step>,
    expect: Outcome,
    /// For each 2xx answer in order, the body bytes that must be stored.
    stored: Vec<Vec<u8>>,
    /// How long the answer may take.
    within: Duration,
}

fn case(name: &'static str, steps: Vec<Step>, expect: Outcome) -> Case {
    Case {
        name,
        steps,
        expect,
        stored: Vec::new(),
        within: SLACK,
    }
}

fn status(code: u16) -> Outcome {
    Outcome::Answers(vec![code])
}

/// `METHOD target HTTP/1.1` with a Host, the given headers, and the body with its length.
fn request(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    write!(out, "{method} {target} HTTP/1.1\r\nhost: 127.0.0.1\r\n").unwrap();
    for (name, value) in headers {
        write!(out, "{name}: {value}\r\n").unwrap();
    }
    write!(out, "content-length: {}\r\n\r\n", body.len()).unwrap();
    out.extend_from_slice(body);
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// A gzip body that inflates to `size` zero bytes, written in pieces to keep memory low.
fn gzip_bomb(size: usize) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let block = vec![0u8; 1 << 20];
    for _ in 0..size / block.len() {
        encoder.write_all(&block).unwrap();
    }
    encoder.finish().unwrap()
}

/// The answers read off one connection: (status, body) pairs, then whether it closed.
async fn exchange(addr: &str, steps: &[Step], expected_answers: usize) -> Vec<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    for step in steps {
        match step {
            // The server may close early (an answer before the body ended): keep reading.
            Step::Send(bytes) => {
                if stream.write_all(bytes).await.is_err() {
                    break;
                }
            }
            Step::Pause(pause) => tokio::time::sleep(*pause).await,
            Step::CloseWrite => {
                let _ = stream.shutdown().await;
            }
        }
    }
    let mut buffer = Vec::new();
    let mut answers = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        while let Some((answer, used)) = parse_answer(&buffer) {
            buffer.drain(..used);
            // 100 Continue is an interim answer, not the request's.
            if answer.0 != 100 {
                answers.push(answer);
            }
        }
        if answers.len() >= expected_answers.max(1) {
            return answers;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return answers,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

/// One whole HTTP/1.1 answer at the start of `buffer` (all of ours carry a length).
fn parse_answer(buffer: &[u8]) -> Option<((u16, Vec<u8>), usize)> {
    let head_end = buffer.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buffer[..head_end]).expect("answer heads are ASCII");
    let code: u16 = head.split(' ').nth(1)?.parse().ok()?;
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    if buffer.len() < head_end + length {
        return None;
    }
    Some((
        (code, buffer[head_end..head_end + length].to_vec()),
        head_end + length,
    ))
}

fn peak_memory_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn corpus(hook: &str) -> Vec<Case> {
    use Step::*;
    let json = |body: &[u8]| request("POST", hook, &[("content-type", "application/json")], body);
    let mut cases = Vec::new();
    let stored = |name, bytes: Vec<u8>, body: Vec<u8>| {
        let mut c = case(name, vec![Send(bytes)], status(200));
        c.stored = vec![body];
        c
    };

    let invalid = br#"{"type": "contact.tag.added", "data": {"contact": {"email": "#.to_vec();
    cases.push(stored("invalid JSON", json(&invalid), invalid));
    let mut deep_arrays = "[".repeat(100_000).into_bytes();
    deep_arrays.extend("]".repeat(100_000).bytes());
    cases.push(stored(
        "100,000 nested arrays",
        json(&deep_arrays),
        deep_arrays,
    ));
    let mut deep_objects = r#"{"a":"#.repeat(100_000).into_bytes();
    deep_objects.extend(b"1");
    deep_objects.extend("}".repeat(100_000).bytes());
    cases.push(stored(
        "100,000 nested objects",
        json(&deep_objects),
        deep_objects,
    ));
    let unclosed = "[".repeat(200_000).into_bytes();
    cases.push(stored("200,000 unclosed arrays", json(&unclosed), unclosed));
    let mut huge_string =
        br#"{"type":"contact.tag.added","email":"a@example.com","tag":""#.to_vec();
    huge_string.extend(std::iter::repeat_n(b'x', 9 << 20));
    huge_string.extend(br#""}"#);
    cases.push(stored(
        "9 MiB single string",
        json(&huge_string),
        huge_string,
    ));
    let mut escapes = br#"{"email":"e@example.com","s":""#.to_vec();
    escapes.extend("\\u00e9\\ud800".repeat(100_000).bytes());
    escapes.extend(br#""}"#);
    cases.push(stored(
        "lone surrogates, 1.2 MB of escapes",
        json(&escapes),
        escapes,
    ));
    let invalid_utf8 =
        b"{\"email\":\"\xff\xfe@example.com\",\"name\":\"\xc0\xaf\xed\xa0\x80\"}".to_vec();
    cases.push(stored(
        "invalid UTF-8 in JSON",
        json(&invalid_utf8),
        invalid_utf8,
    ));
    let nul = b"{\"email\":\"n\x00ul@example.com\",\"x\":\"\x00\x00\"}".to_vec();
    cases.push(stored("NUL bytes in the body", json(&nul), nul));
    let binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    cases.push(stored(
        "binary body claiming JSON",
        json(&binary),
        binary.clone(),
    ));
    let png_json = br#"{"email":"liar@example.com"}"#.to_vec();
    cases.push(stored(
        "JSON claiming to be an image",
        request("POST", hook, &[("content-type", "image/png")], &png_json),
        png_json,
    ));
    let form = b"email=%3Cscript%3E%40example.com&x=%ZZ&&==&a=%".to_vec();
    cases.push(stored(
        "broken form encoding",
        request(
            "POST",
            hook,
            &[("content-type", "application/x-www-form-urlencoded")],
            &form,
        ),
        form,
    ));
    let charset = br#"{"email":"c@example.com"}"#.to_vec();
    cases.push(stored(
        "unknown charset and multipart without boundary",
        request(
            "POST",
            hook,
            &[("content-type", "multipart/form-data; charset=x-klingon")],
            &charset,
        ),
        charset,
    ));
    let bomb = gzip_bomb(256 << 20);
    cases.push(stored(
        "gzip bomb (256 MiB of zeros)",
        request(
            "POST",
            hook,
            &[
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
            &bomb,
        ),
        bomb,
    ));
    let not_gzip = b"this is not gzip".to_vec();
    cases.push(stored(
        "invalid gzip",
        request("POST", hook, &[("content-encoding", "gzip")], &not_gzip),
        not_gzip,
    ));
    let double = gzip(&gzip(br#"{"email":"twice@example.com"}"#));
    cases.push(stored(
        "gzip inside gzip, unknown encodings listed",
        request(
            "POST",
            hook,
            &[("content-encoding", "gzip, br, x-custom")],
            &double,
        ),
        double,
    ));
    cases.push(stored("empty body", json(b""), Vec::new()));
    let many: Vec<(String, String)> = (0..200)
        .map(|i| (format!("x-h{i}"), format!("v{i}")))
        .collect();
    let many_refs: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let small = br#"{"email":"headers@example.com"}"#.to_vec();
    cases.push(stored(
        "200 headers",
        request("POST", hook, &many_refs, &small),
        small.clone(),
    ));
    let big_value = "v".repeat(60_000);
    cases.push(stored(
        "a 60 KB header value",
        request("POST", hook, &[("x-big", &big_value)], &small),
        small.clone(),
    ));
    let too_many: Vec<(String, String)> =
        (0..300).map(|i| (format!("x-h{i}"), "v".into())).collect();
    let too_many_refs: Vec<(&str, &str)> = too_many
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    cases.push(case(
        "300 headers",
        vec![Send(request("POST", hook, &too_many_refs, &small))],
        status(431),
    ));
    let huge_header = "v".repeat(1 << 20);
    cases.push(case(
        "a 1 MiB header",
        vec![Send(request(
            "POST",
            hook,
            &[("x-huge", &huge_header)],
            &small,
        ))],
        status(431),
    ));
    cases.push(stored(
        "path traversal after the token",
        request(
            "POST",
            &format!("{hook}/../../api/events?x=../../etc/passwd"),
            &[],
            &small,
        ),
        small.clone(),
    ));
    cases.push(stored(
        "odd encodings in path and query",
        request(
            "POST",
            &format!("{hook}/%00%ff%2e%2e/%C0%AE%2F?q=%zz&%00=%FF&a=b=c&&"),
            &[],
            &small,
        ),
        small.clone(),
    ));
    cases.push(case(
        "traversal before the token",
        vec![Send(request("POST", &format!("/h/..{hook}"), &[], &small))],
        status(404),
    ));
    cases.push(case(
        "the API on the ingest port",
        vec![Send(request("GET", "/api/events", &[], b""))],
        status(404),
    ));
    cases.push(case(
        "the UI on the ingest port",
        vec![Send(request("GET", "/", &[], b""))],
        status(404),
    ));
    cases.push(case(
        "an unknown token",
        vec![Send(request("POST", "/h/not-a-token", &[], &small))],
        status(404),
    ));
    cases.push(stored(
        "an invented method",
        request("BREW", hook, &[], &small),
        small.clone(),
    ));
    cases.push(case(
        "a 100 KB request target",
        vec![Send(request(
            "GET",
            &format!("{hook}?{}", "q".repeat(100_000)),
            &[],
            b"",
        ))],
        status(414),
    ));
    cases.push(case(
        "raw bytes above ASCII in the target",
        vec![Send(
            b"POST /h/x\xff\xfe HTTP/1.1\r\nhost: a\r\ncontent-length: 0\r\n\r\n".to_vec(),
        )],
        status(400),
    ));
    cases.push(case(
        "NUL in a header value",
        vec![Send(
            format!("POST {hook} HTTP/1.1\r\nhost: a\r\nx-a: b\0c\r\ncontent-length: 0\r\n\r\n")
                .into_bytes(),
        )],
        status(400),
    ));
    cases.push(case(
        "a header name with spaces",
        vec![Send(
            format!("POST {hook} HTTP/1.1\r\nhost: a\r\nbad name: v\r\ncontent-length: 0\r\n\r\n")
                .into_bytes(),
        )],
        status(400),
    ));
    cases.push(case(
        "two different Content-Length",
        vec![Send(format!("POST {hook} HTTP/1.1\r\nhost: a\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nabc").into_bytes())],
        status(400),
    ));
    cases.push(case(
        "a negative Content-Length",
        vec![Send(
            format!("POST {hook} HTTP/1.1\r\nhost: a\r\ncontent-length: -5\r\n\r\n").into_bytes(),
        )],
        status(400),
    ));
    cases.push(case(
        "a declared body over the limit, not sent",
        vec![Send(
            format!("POST {hook} HTTP/1.1\r\nhost: a\r\ncontent-length: 999999999999\r\n\r\n")
                .into_bytes(),
        )],
        status(413),
    ));
    let mut over = format!("POST {hook} HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n")
        .into_bytes();
    let piece = vec![b'z'; 1 << 20];
    for _ in 0..11 {
        over.extend(format!("{:x}\r\n", piece.len()).bytes());
        over.extend(&piece);
        over.extend(b"\r\n");
    }
    cases.push(case(
        "a chunked body over the limit",
        vec![Send(over)],
        status(413),
    ));
    cases.push(case(
        "a malformed chunk size",
        vec![Send(format!("POST {hook} HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n").into_bytes())],
        status(400),
    ));
    // Transfer-Encoding wins (RFC 9112 6.3); the connection is not reused after it.
    let mut smuggle = case(
        "chunked and Content-Length together",
        vec![Send(format!("POST {hook} HTTP/1.1\r\nhost: a\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n").into_bytes())],
        status(200),
    );
    smuggle.stored = vec![b"abc".to_vec()];
    cases.push(smuggle);
    let mut never_ends = case(
        "a chunked body that never ends",
        vec![Send(format!("POST {hook} HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n").into_bytes())],
        status(408),
    );
    never_ends.within = BODY_IDLE + SLACK;
    cases.push(never_ends);
    let mut trickle_steps = vec![Send(
        format!("POST {hook} HTTP/1.1\r\nhost: a\r\ncontent-length: 100\r\n\r\n").into_bytes(),
    )];
    for _ in 0..12 {
        trickle_steps.push(Send(b"x".to_vec()));
        trickle_steps.push(Pause(Duration::from_millis(500)));
    }
    let mut trickle = case(
        "a body trickled a byte at a time",
        trickle_steps,
        status(408),
    );
    trickle.within = BODY_TOTAL + SLACK;
    cases.push(trickle);
    let mut short = case(
        "a body shorter than its Content-Length, then silence",
        vec![Send(
            format!("POST {hook} HTTP/1.1\r\nhost: a\r\ncontent-length: 100\r\n\r\nonly this")
                .into_bytes(),
        )],
        status(408),
    );
    short.within = BODY_IDLE + SLACK;
    cases.push(short);
    cases.push(case(
        "a body shorter than its Content-Length, then the client stops",
        vec![
            Send(
                format!("POST {hook} HTTP/1.1\r\nhost: a\r\ncontent-length: 100\r\n\r\ntruncated")
                    .into_bytes(),
            ),
            CloseWrite,
        ],
        status(400),
    ));
    let mut longer = case(
        "a body longer than its Content-Length",
        vec![Send(format!("POST {hook} HTTP/1.1\r\nhost: a\r\ncontent-length: 3\r\n\r\nabcGARBAGE NOT HTTP\r\n\r\n").into_bytes())],
        Outcome::Answers(vec![200, 400]),
    );
    longer.stored = vec![b"abc".to_vec()];
    cases.push(longer);
    let mut slowloris = case(
        "slowloris: a head that never ends",
        vec![
            Send(format!("POST {hook} HTTP/1.1\r\nhost: a\r\n").into_bytes()),
            Pause(Duration::from_millis(700)),
            Send(b"x-a: 1\r\n".to_vec()),
            Pause(Duration::from_millis(700)),
            Send(b"x-b: 2\r\n".to_vec()),
        ],
        Outcome::Closed,
    );
    slowloris.within = HEAD_TIMEOUT + SLACK;
    cases.push(slowloris);
    let mut silent = case("a connection that says nothing", vec![], Outcome::Closed);
    silent.within = HEAD_TIMEOUT + SLACK;
    cases.push(silent);
    let mut http10 = case(
        "HTTP/1.0",
        vec![Send(
            format!("POST {hook} HTTP/1.0\r\ncontent-length: 5\r\n\r\nhttp1").into_bytes(),
        )],
        status(200),
    );
    http10.stored = vec![b"http1".to_vec()];
    cases.push(http10);
    let mut http10_bare = case(
        "HTTP/1.0 without a length or Host",
        vec![Send(format!("POST {hook} HTTP/1.0\r\n\r\n").into_bytes())],
        status(200),
    );
    http10_bare.stored = vec![Vec::new()];
    cases.push(http10_bare);
    let mut pipelined_bytes = Vec::new();
    let mut pipelined_bodies = Vec::new();
    for i in 0..5 {
        let body = format!(r#"{{"email":"pipe{i}@example.com"}}"#).into_bytes();
        pipelined_bytes.extend(json(&body));
        pipelined_bodies.push(body);
    }
    let mut pipelined = case(
        "five pipelined requests",
        vec![Send(pipelined_bytes)],
        Outcome::Answers(vec![200; 5]),
    );
    pipelined.stored = pipelined_bodies;
    cases.push(pipelined);
    let mut expect = case(
        "Expect: 100-continue",
        vec![Send(request(
            "POST",
            hook,
            &[("expect", "100-continue")],
            b"after continue",
        ))],
        status(200),
    );
    expect.stored = vec![b"after continue".to_vec()];
    cases.push(expect);
    cases.push(case(
        "an HTTP/2 preface",
        vec![Send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec())],
        Outcome::Closed,
    ));
    cases.push(case(
        "bytes that are not HTTP",
        vec![Send(
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n".to_vec(),
        )],
        status(400),
    ));
    cases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_defined_answers_while_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let running = app::start(hookscope_core::ServeOptions {
        ingest_limits: limits(256),
        ..test_options(dir.path())
    })
    .await
    .unwrap();
    let api = Api::of(&running);
    let addr = running.ingest_addr.to_string();
    let url = url::Url::parse(&running.webhook_url).unwrap();
    let hook = url.path().to_string();
    let cases = corpus(&hook);
    assert!(cases.len() >= 40, "the corpus has {} cases", cases.len());
    let memory_before = peak_memory_kib();

    // A well-behaved sender keeps delivering while the corpus runs.
    let done = tokio_util::sync::CancellationToken::new();
    let good = {
        let done = done.clone();
        let url = running.webhook_url.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let sale = fixture("systeme-settings/sale-new");
            let mut acked = Vec::new();
            let mut slowest = Duration::ZERO;
            while !done.is_cancelled() {
                let started = Instant::now();
                let id = support::deliver(&http, &url, &sale).await;
                slowest = slowest.max(started.elapsed());
                acked.push(id);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (acked, sale.body, slowest)
        })
    };

    let started = Instant::now();
    let runs = cases.iter().map(|case| {
        let addr = addr.clone();
        async move {
            let expected = match &case.expect {
                Outcome::Answers(codes) => codes.len(),
                Outcome::Closed => 1,
            };
            let begun = Instant::now();
            let answers = tokio::time::timeout(case.within, exchange(&addr, &case.steps, expected))
                .await
                .unwrap_or_else(|_| {
                    panic!("{}: no defined answer within {:?}", case.name, case.within)
                });
            (case, answers, begun.elapsed())
        }
    });
    let results = futures_util::future::join_all(runs).await;
    let corpus_time = started.elapsed();
    done.cancel();
    let (good_ids, good_body, slowest) = good.await.unwrap();

    let mut checked = 0;
    let mut mismatches = Vec::new();
    for (case, answers, took) in &results {
        let outcome = if answers.is_empty() {
            Outcome::Closed
        } else {
            Outcome::Answers(answers.iter().map(|(code, _)| *code).collect())
        };
        if outcome != case.expect {
            mismatches.push(format!(
                "{}: {outcome:?}, expected {:?} (in {took:?})",
                case.name, case.expect
            ));
            continue;
        }
        let acked: Vec<&Vec<u8>> = answers
            .iter()
            .filter(|(code, _)| *code == 200)
            .map(|(_, body)| body)
            .collect();
        assert_eq!(
            acked.len(),
            case.stored.len(),
            "{}: acknowledged as expected",
            case.name
        );
        for (ack, expected_body) in acked.iter().zip(&case.stored) {
            let ack: serde_json::Value = serde_json::from_slice(ack).unwrap();
            let id = ack["id"].as_str().unwrap();
            let stored = api
                .get(&format!("/api/events/{id}/raw"))
                .send()
                .await
                .unwrap();
            assert_eq!(stored.status(), 200, "{}", case.name);
            let bytes = stored.bytes().await.unwrap();
            assert!(
                bytes[..] == expected_body[..],
                "{}: stored byte for byte",
                case.name
            );
            let event = api.get(&format!("/api/events/{id}")).send().await.unwrap();
            assert_eq!(
                event.status(),
                200,
                "{}: its event JSON is served",
                case.name
            );
            let event: serde_json::Value = event.json().await.unwrap();
            assert_eq!(event["id"], id, "{}", case.name);
            checked += 1;
        }
    }
    assert!(
        mismatches.is_empty(),
        "answers differ:\n{}",
        mismatches.join("\n")
    );
    for id in &good_ids {
        let stored = api
            .get(&format!("/api/events/{id}/raw"))
            .send()
            .await
            .unwrap();
        assert_eq!(stored.bytes().await.unwrap()[..], good_body[..]);
    }
    // Nothing that was refused or cut short left a row behind.
    let all = api.json("/api/events?limit=1000").await;
    assert_eq!(
        all["events"].as_array().unwrap().len(),
        checked + good_ids.len(),
        "only acknowledged deliveries are stored"
    );
    let growth_mib = (peak_memory_kib() - memory_before) / 1024;
    println!(
        "hostile corpus: {} cases in {:.1} s, {} acknowledged and checked; good sender: {} deliveries, slowest {:?}; peak memory grew {} MiB",
        results.len(),
        corpus_time.as_secs_f64(),
        checked,
        good_ids.len(),
        slowest,
        growth_mib
    );
    assert!(good_ids.len() >= 20, "the good sender kept being served");
    assert!(
        growth_mib < 600,
        "memory stays bounded: peak grew {growth_mib} MiB"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_is_turned_away_and_service_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let running = app::start(hookscope_core::ServeOptions {
        ingest_limits: flood_limits(16),
        ..test_options(dir.path())
    })
    .await
    .unwrap();
    let addr = running.ingest_addr.to_string();
    let holders = hold_every_slot(&addr, 16).await;
    for _ in 0..4 {
        assert_turned_away_at_once(&addr).await;
    }
    // The silent holders are closed after the head timeout; then deliveries go through.
    assert_served_again(&running, FLOOD_HEAD_TIMEOUT + SLACK).await;
    drop(holders);
    running.stop().await;
}

/// Opens `slots` silent connections and lets the server take them all.
async fn hold_every_slot(addr: &str, slots: usize) -> Vec<TcpStream> {
    let mut holders = Vec::new();
    for _ in 0..slots {
        holders.push(TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    holders
}

/// One connection too many gets a 503 at once (well before a slot frees up), not a hang
/// or a reset.
async fn assert_turned_away_at_once(addr: &str) {
    let started = Instant::now();
    let answers = tokio::time::timeout(SLACK, exchange(addr, &[], 1))
        .await
        .unwrap();
    assert_eq!(
        answers.first().map(|a| a.0),
        Some(503),
        "one too many is told to come back"
    );
    assert!(
        started.elapsed() < FLOOD_HEAD_TIMEOUT / 2,
        "at once, not when a slot frees up: {:?}",
        started.elapsed()
    );
}

/// Retries a delivery until it is acknowledged; panics after `within`.
async fn assert_served_again(running: &hookscope_core::Running, within: Duration) {
    let http = reqwest::Client::new();
    let sale = fixture("systeme-settings/sale-new");
    let started = Instant::now();
    loop {
        let mut request = http.post(&running.webhook_url).body(sale.body.clone());
        for (name, value) in &sale.headers {
            request = request.header(name, value);
        }
        if let Ok(response) = request.send().await
            && response.status() == 200
        {
            return;
        }
        assert!(
            started.elapsed() < within,
            "deliveries are taken again within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

const HOG_STALL: Duration = Duration::from_secs(5);

/// A client that sends requests and never reads the answers: once its socket buffers are
/// full the answer cannot be written, and after the write limit its connection goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_read_lose_their_connections() {
    let dir = tempfile::tempdir().unwrap();
    let running = app::start(hookscope_core::ServeOptions {
        // Long enough for every hog to be in place before the first is let go.
        ingest_limits: ListenerLimits {
            write_stall: HOG_STALL,
            ..limits(4)
        },
        ..test_options(dir.path())
    })
    .await
    .unwrap();
    // Large answers: the endpoint's chosen response.
    let api = Api::of(&running);
    let endpoints = api.json("/api/endpoints").await;
    let id = endpoints["endpoints"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let changed = api
        .http
        .patch(format!("{}/api/endpoints/{id}", api.base))
        .bearer_auth(&api.token)
        .json(&serde_json::json!({"response": {"status": 200, "headers": [], "body": "x".repeat(65_536), "delay_ms": 0}}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200, "{}", changed.text().await.unwrap());
    let hook = url::Url::parse(&running.webhook_url)
        .unwrap()
        .path()
        .to_string();
    let mut hogs = Vec::new();
    for _ in 0..4 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut stream = socket.connect(running.ingest_addr).await.unwrap();
        // Each answer is 64 KiB, so a few dozen overflow both sockets' buffers.
        let requests = request("POST", &hook, &[], b"{}").repeat(200);
        let _ = tokio::time::timeout(Duration::from_millis(300), stream.write_all(&requests)).await;
        hogs.push(stream);
    }
    // Every slot is held now; a newcomer is turned away.
    let answers = tokio::time::timeout(SLACK, exchange(&running.ingest_addr.to_string(), &[], 1))
        .await
        .unwrap();
    assert_eq!(
        answers.first().map(|a| a.0),
        Some(503),
        "the hogs hold every slot"
    );
    let started = Instant::now();
    assert_served_again(&running, HOG_STALL + SLACK).await;
    println!(
        "slots freed from clients that never read after {:?}",
        started.elapsed()
    );
    drop(hogs);
    running.stop().await;
}

/// The UI port is loopback only, but any program on the machine can reach it: silent
/// connections are closed after the head timeout, one too many gets 503 at once, and the
/// window's API answers again afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_port_is_guarded_like_the_ingest_port() {
    let dir = tempfile::tempdir().unwrap();
    let running = app::start(hookscope_core::ServeOptions {
        ui_limits: flood_limits(4),
        ..test_options(dir.path())
    })
    .await
    .unwrap();
    let addr = running.ui_addr.to_string();
    let mut holders = hold_every_slot(&addr, 4).await;
    assert_turned_away_at_once(&addr).await;

    // Each silent holder is closed after the head timeout.
    for holder in &mut holders {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(FLOOD_HEAD_TIMEOUT + SLACK, holder.read(&mut byte))
            .await
            .expect("a silent connection to the UI port is closed");
        assert!(matches!(read, Ok(0) | Err(_)), "closed, not answered");
    }
    let api = Api::of(&running);
    let status = api.get("/api/status").send().await.unwrap();
    assert_eq!(status.status(), 200, "the window's API answers again");
    running.stop().await;
}
