//! Captures are personal data. Forgetting a contact removes every delivery about them or
//! mentioning their email, and every trace derived from those: no byte of their email,
//! name or a string unique to their payloads remains in the database file, its log, the
//! full-text index or an export, and what remains is what a reindex of it would make.
//! Retention prunes exactly what is older than the cutoff while deliveries keep arriving.

use crate::support;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use hookscope_core::store::db::{self, Synchronous};
use hookscope_core::store::indexer;
use serde_json::{Value, json};
use support::{Api, Fixture, every_answer, fixture, start_server, test_options};

const MARIE: &str = "marie.forget@example.fr";
/// Strings only Marie's deliveries hold: her surname and her street.
const HERS: [&str; 3] = [MARIE, "zzyzx", "qwertyuiop"];

fn automation(kind: &str, email: &str, surname: &str, extra: Value) -> Fixture {
    let mut body = json!({
        "type": kind,
        "data": {
            "contact": {"id": 1, "email": email,
                        "fields": {"first_name": "Someone", "surname": surname}},
            "tag": {"id": 7, "name": "Lead"},
            "funnel_step": {"id": 3, "name": "Squeeze", "funnel": {"id": 9, "name": "Blog"}},
        },
        "created_at": "2026-11-28T09:00:00+00:00",
    });
    body["data"]
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    Fixture {
        name: format!("{kind} {email}"),
        body: body.to_string().into_bytes(),
        headers: vec![("content-type".into(), "application/json".into())],
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// Every file of the store, as bytes, lower-cased.
fn store_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with("hookscope.db") || name.starts_with("hookscope-derived.db")
        })
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read(&p).unwrap().to_ascii_lowercase(),
            )
        })
        .collect()
}

fn holds(bytes: &[u8], needle: &str) -> bool {
    memchr::memmem::find(bytes, needle.as_bytes()).is_some()
}

/// Marie's deliveries (one repeated, one under her address in other case), others', and
/// others' that mention her: in a field, in a header, in a compressed body.
fn deliveries() -> Vec<Fixture> {
    let marie_tag = automation("contact.tag.added", MARIE, "Zzyzx", json!({}));
    let hers = [
        marie_tag.clone(),
        // The same body again: a probable repeat.
        marie_tag,
        automation(
            "contact.optin.completed",
            MARIE,
            "Zzyzx",
            json!({"street": "12 Qwertyuiop"}),
        ),
        automation(
            "contact.tag.removed",
            "Marie.Forget@Example.FR",
            "Zzyzx",
            json!({}),
        ),
    ];
    let others = [
        automation("contact.tag.added", "bob@example.com", "Builder", json!({})),
        automation(
            "contact.optin.completed",
            "ann@example.com",
            "Other",
            json!({}),
        ),
        fixture("systeme-settings/sale-new"),
    ];
    // Deliveries of others that mention her: in a field, in a header, compressed.
    let mut mention_in_header =
        automation("contact.tag.added", "carl@example.com", "Carl", json!({}));
    mention_in_header
        .headers
        .push(("x-referred-by".into(), MARIE.to_uppercase()));
    let mut compressed = automation(
        "contact.tag.added",
        "dora@example.com",
        "Dora",
        json!({"note": format!("sister of {MARIE}")}),
    );
    compressed.body = gzip(&compressed.body);
    compressed
        .headers
        .push(("content-encoding".into(), "gzip".into()));
    let mentioning = [
        automation(
            "contact.tag.added",
            "bob@example.com",
            "Builder",
            json!({"note": format!("referred by {}", MARIE.to_uppercase())}),
        ),
        mention_in_header,
        compressed,
    ];
    hers.into_iter().chain(others).chain(mentioning).collect()
}

/// The full-text indexes are whole: what a forget took out of them left them consistent.
fn assert_indexes_whole(dir: &Path) {
    let conn = db::open_second_writer(&db::database_path(dir), Synchronous::Full).unwrap();
    for table in ["events_fts", "contacts_search"] {
        conn.execute(
            &format!("INSERT INTO {table} ({table}) VALUES ('integrity-check')"),
            [],
        )
        .unwrap_or_else(|e| panic!("{table} is whole: {e}"));
    }
}

/// The store as a reindex makes it: a copy of its files, derived again.
async fn rebuilt_answers(dir: &Path) -> Value {
    let copy = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if name.starts_with("hookscope.db") || name.starts_with("hookscope-derived.db") {
            std::fs::copy(&path, copy.path().join(name)).unwrap();
        }
    }
    let mut conn = db::open_writer(&db::database_path(copy.path()), Synchronous::Full).unwrap();
    indexer::reset(&mut conn).unwrap();
    indexer::run_to_end(&mut conn, 1 << 20, |_, _| {}).unwrap();
    drop(conn);
    let running = start_server(copy.path()).await;
    let answers = every_answer(&Api::of(&running)).await;
    running.stop().await;
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgetting_a_contact_leaves_no_byte_of_them_and_the_rest_as_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let running = start_server(dir.path()).await;
    let api = Api::of(&running);
    let http = reqwest::Client::new();
    for f in deliveries() {
        support::deliver(&http, &running.webhook_url, &f).await;
    }
    let before = every_answer(&api).await;
    // Their contact rows, cards and events; not drift, which is learned from the deliveries
    // before each one (hers no longer count: a reindex says so too, checked below).
    let untouched = |answers: &Value| {
        let mut timeline = answers["timelines"]["ann@example.com"].clone();
        for event in timeline["events"].as_array_mut().unwrap() {
            event["drift"] = Value::Null;
        }
        json!([
            answers["cards"]["ann@example.com"],
            answers["cards"]["marie.dupont@example.fr"],
            timeline,
        ])
    };

    let email = support::urlencoding("Marie.Forget@example.fr");
    let preview = api.json(&format!("/api/contacts/{email}/erasure")).await;
    assert_eq!(
        preview,
        json!({"email": MARIE, "deliveries": 4, "mentioning": 3}),
        "the confirmation says how many go"
    );
    let forgot: Value = delete(&api, &format!("/api/contacts/{email}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(forgot, preview, "what was said is what was done");
    let after = every_answer(&api).await;
    assert_eq!(
        untouched(&after),
        untouched(&before),
        "contacts her deliveries did not touch are unchanged"
    );
    let export = api
        .text("/api/export?format=ndjson")
        .await
        .to_ascii_lowercase();
    for unique in HERS {
        assert!(!export.contains(unique), "{unique} is in no export");
    }
    assert_eq!(
        api.get(&format!("/api/contacts/{email}"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    // The newest deliveries mentioned her: one arriving now takes a number of its own and is
    // derived like any other (a reused number would sit behind the indexer's position).
    let late = automation("contact.tag.added", "eve@example.com", "Late", json!({}));
    let late_id = support::deliver(&http, &running.webhook_url, &late).await;
    let timeline = api.json("/api/events?email=eve%40example.com").await;
    assert_eq!(timeline["events"][0]["id"], late_id.as_str(), "{timeline}");
    let after = every_answer(&api).await;
    running.stop().await;

    for (file, bytes) in store_bytes(dir.path()) {
        for unique in HERS {
            assert!(!holds(&bytes, unique), "no byte of {unique:?} in {file}");
        }
    }
    // Her contact's search row went with it: the trigram index keeps only trigrams, so no
    // byte scan finds a row left there, which would match her address for whichever
    // contact takes her row's number next.
    let search_rows = |q: &str| -> i64 {
        db::open_reader(&db::database_path(dir.path()))
            .unwrap()
            .query_row(
                "SELECT count(*) FROM contacts_search WHERE contacts_search MATCH ?1",
                [format!("\"{q}\"")],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!(search_rows("marie.forget"), 0, "her search row is gone");
    assert_eq!(search_rows("marie.dupont"), 1, "the others' are there");
    assert_indexes_whole(dir.path());
    support::assert_same_answers(
        &rebuilt_answers(dir.path()).await,
        &after,
        "what remains is what a reindex of it makes",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_indexed_with_another_text_is_forgotten_by_deriving_everything_again() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let running = start_server(dir.path()).await;
    for f in deliveries() {
        support::deliver(&http, &running.webhook_url, &f).await;
    }
    let before = every_answer(&Api::of(&running)).await;
    running.stop().await;
    // As if one of her events had been indexed under another body limit or by a
    // Hookscope that made its text otherwise: its tokens cannot be found by its text now.
    {
        let conn =
            db::open_second_writer(&db::database_path(dir.path()), Synchronous::Full).unwrap();
        let changed = conn
            .execute(
                "UPDATE events SET search_hash = 1 WHERE seq =
                     (SELECT min(seq) FROM events WHERE contact_key = ?1)",
                [MARIE],
            )
            .unwrap();
        assert_eq!(changed, 1);
    }
    let running = start_server(dir.path()).await;
    let api = Api::of(&running);
    let forgot: Value = api
        .http
        .delete(format!(
            "{}/api/contacts/{}",
            api.base,
            support::urlencoding(MARIE)
        ))
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(forgot["deliveries"], 4, "{forgot}");
    // Derived again in the background; answers wait for it like after an upgrade.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = api.json("/api/status").await;
        if status["indexing"]["behind"] == 0 && status["indexing"]["through"].as_i64() > Some(0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "indexed again: {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = every_answer(&api).await;
    assert_eq!(
        after["events"]["events"].as_array().unwrap().len(),
        before["events"]["events"].as_array().unwrap().len() - 7,
        "her 4 and the 3 that mention her are gone, the rest derived again"
    );
    running.stop().await;
    for (file, bytes) in store_bytes(dir.path()) {
        for unique in HERS {
            assert!(!holds(&bytes, unique), "no byte of {unique:?} in {file}");
        }
    }
    assert_indexes_whole(dir.path());
    support::assert_same_answers(
        &rebuilt_answers(dir.path()).await,
        &after,
        "what remains is what a reindex of it makes",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_prunes_exactly_what_is_older_than_the_cutoff_while_deliveries_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let running = hookscope_core::app::start(test_options(dir.path()))
        .await
        .unwrap();
    let api = Api::of(&running);
    let http = reqwest::Client::new();
    // History: imported deliveries from 3 days ago to 20 hours ago, one an hour.
    let now = hookscope_core::timefmt::now_micros();
    let hour = 3_600_000_000i64;
    let mut lines = Vec::new();
    for h in 20..72 {
        let at = hookscope_core::timefmt::format_micros(now - h * hour);
        lines.push(
            json!({
                "id": format!("01900000-0000-7000-8000-{h:012}"),
                "received_at": at, "endpoint": "ep_old", "method": "POST", "path": "/h/x",
                "headers": [["content-type", "application/json"]],
                "body": {"type": "contact.tag.added",
                         "data": {"contact": {"email": format!("old{}@example.com", h % 5)},
                                  "tag": {"name": format!("h{h}")}}},
            })
            .to_string(),
        );
    }
    let mut writer = db::open_writer(&db::database_path(dir.path()), Synchronous::Full).unwrap();
    hookscope_core::exchange::import::import(&mut writer, lines.join("\n").as_bytes(), 1 << 20)
        .unwrap();
    drop(writer);
    // Deliveries keep arriving while the policy is set and the run goes.
    let sender = {
        let (http, url) = (http.clone(), running.webhook_url.clone());
        tokio::spawn(async move {
            let mut acked = Vec::new();
            for n in 0..150 {
                let f = automation(
                    "contact.tag.added",
                    &format!("live{}@example.com", n % 7),
                    "Live",
                    json!({"n": n}),
                );
                acked.push(support::deliver(&http, &url, &f).await);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            acked
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let policy: Value = api
        .http
        .put(format!("{}/api/retention", api.base))
        .bearer_auth(&api.token)
        .json(&json!({"days": 2}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(policy["days"], 2);
    let acked = sender.await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let policy = api.json("/api/retention").await;
        if policy["last_run"]["pruned"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "a run ends: {policy}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let policy = api.json("/api/retention").await;
    assert_eq!(
        policy["last_run"]["pruned"], 24,
        "the 24 deliveries from 48 to 71 hours ago, no more: {policy}"
    );
    let answers = every_answer(&api).await;
    let kept: Vec<String> = answers["events"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    for id in &acked {
        assert!(
            kept.contains(id),
            "acknowledged delivery {id} inside the window is kept"
        );
    }
    for h in 20..72 {
        let id = format!("01900000-0000-7000-8000-{h:012}");
        assert_eq!(
            kept.contains(&id),
            h < 48,
            "the delivery from {h} hours ago"
        );
    }
    running.stop().await;
    support::assert_same_answers(
        &rebuilt_answers(dir.path()).await,
        &answers,
        "what remains is what a reindex of it makes",
    );
}

/// Waits (30 s at most) until the status counts `n` events.
async fn wait_for_events(api: &Api, n: u64, why: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = api.json("/api/status").await;
        if status["events"] == n && status["indexing"]["behind"] == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{n} events ({why}): {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An API request with the token, and a JSON body when given.
async fn send(
    api: &Api,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let request = api
        .http
        .request(method, format!("{}{path}", api.base))
        .bearer_auth(&api.token);
    match body {
        Some(body) => request.json(&body),
        None => request,
    }
    .send()
    .await
    .unwrap()
}

async fn delete(api: &Api, path: &str) -> reqwest::Response {
    send(api, reqwest::Method::DELETE, path, None).await
}

async fn put_json(api: &Api, path: &str, body: Value) -> reqwest::Response {
    send(api, reqwest::Method::PUT, path, Some(body)).await
}

async fn post_json(api: &Api, path: &str, body: Value) -> reqwest::Response {
    send(api, reqwest::Method::POST, path, Some(body)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_refuses_anything_but_one_whole_address_and_erases_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let running = start_server(dir.path()).await;
    let api = Api::of(&running);
    let http = reqwest::Client::new();
    for f in deliveries() {
        support::deliver(&http, &running.webhook_url, &f).await;
    }
    let before = every_answer(&api).await;
    // Blank, partial and hostile arguments, as a user or a script may pass them: each was
    // a substring of every delivery, or of many. Also too long to be an address: a local
    // part past 64 characters, and a pasted page.
    let long_local = format!("{}%40example.fr", "m".repeat(65));
    let pasted = "marie.forget%40example.fr%20".repeat(400);
    for bad in [
        long_local.as_str(),
        pasted.as_str(),
        "%20",
        "%09%0A",
        "%40example.fr",
        "example.fr",
        "marie",
        "m",
        "%40",
        "%2A",
        "%25",
        "a.",
        "marie.forget%40",
        "marie.forget%40example",
        "%40%40",
        "a%20b%40x.com",
        "marie.forget%40example.fr%2C%20ann%40example.com",
    ] {
        let preview = api
            .get(&format!("/api/contacts/{bad}/erasure"))
            .send()
            .await
            .unwrap();
        assert_eq!(preview.status(), 400, "the preview of {bad:?} is refused");
        let answer = delete(&api, &format!("/api/contacts/{bad}")).await;
        assert_eq!(answer.status(), 400, "forgetting {bad:?} is refused");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["code"], "invalid_request");
        assert!(
            body["message"].as_str().unwrap().contains("email address"),
            "the refusal says what to give: {body}"
        );
        let export = api
            .get(&format!("/api/export?forget={bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(export.status(), 400, "an export for forgetting {bad:?} too");
    }
    support::assert_same_answers(
        &every_answer(&api).await,
        &before,
        "no refused forget erased anything",
    );
    running.stop().await;
}

/// A delivery posted to `url` (plus `suffix`: a path or query) with these headers and body.
async fn post_raw(
    http: &reqwest::Client,
    url: &str,
    suffix: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> String {
    let mut request = http.post(format!("{url}{suffix}")).body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "{suffix} is acknowledged");
    let ack: Value = response.json().await.unwrap();
    ack["id"].as_str().unwrap().to_string()
}

const JSON: (&str, &str) = ("content-type", "application/json");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mention_is_the_whole_address_in_any_encoding_and_the_export_is_what_goes() {
    let dir = tempfile::tempdir().unwrap();
    let running = start_server(dir.path()).await;
    let api = Api::of(&running);
    let http = reqwest::Client::new();
    let url = running.webhook_url.clone();
    let tagged =
        |email: &str, note: &str| automation("contact.tag.added", email, note, json!({})).body;
    // Others whose addresses hold hers: never hers.
    let mut others = Vec::new();
    for email in [
        "joann@x.com",
        "marie-ann@x.com",
        "ann@x.com.au",
        "ann@x.community",
        "ann.b@x.com",
    ] {
        others.push(post_raw(&http, &url, "", &[JSON], tagged(email, "Other")).await);
    }
    // Hers, and mentions of her written every way senders write.
    let mut hers = vec![post_raw(&http, &url, "", &[JSON], tagged("Ann@X.com", "Ann")).await];
    let json_escaped = br#"{"note":"from ann\u0040x\u002ecom"}"#.to_vec();
    let mut members = gzip(br#"{"note":"from an"#);
    members.extend(gzip(br#"n@x.com"}"#));
    for (suffix, headers, body) in [
        (
            "",
            vec![("content-type", "application/x-www-form-urlencoded")],
            b"name=Ann+Lee&email=ann%40x.com".to_vec(),
        ),
        ("?ref=ANN%40X.COM", vec![], b"{}".to_vec()),
        ("/contacts/ann%2540x.com", vec![], Vec::new()),
        ("", vec![JSON], json_escaped),
        ("", vec![JSON, ("content-encoding", "gzip")], members),
        (
            "",
            vec![JSON, ("content-encoding", "gzip, gzip")],
            gzip(&gzip(br#"{"to":"<ann@x.com>"}"#)),
        ),
        (
            "",
            vec![JSON, ("x-referred-by", "Ann@x.com")],
            b"{}".to_vec(),
        ),
    ] {
        hers.push(post_raw(&http, &url, suffix, &headers, body).await);
    }
    // A plus address and an accented one, written encoded.
    let plus = post_raw(&http, &url, "?e=ann%2Bvip%40x.com", &[], Vec::new()).await;
    others.push(plus.clone());
    let zoe_nfd = automation("contact.tag.added", "zoe\u{301}@x.com", "Zoe", json!({}));
    let zoe_escaped = br#"{"note":"ZO\u00c9@X.COM"}"#.to_vec();
    let zoe = [
        post_raw(&http, &url, "", &[JSON], tagged("zoé@x.com", "Zoe")).await,
        post_raw(&http, &url, "", &[JSON], zoe_nfd.body).await,
        post_raw(&http, &url, "", &[JSON], zoe_escaped).await,
    ];
    others.extend(zoe.iter().cloned());

    let contacts = api.json("/api/contacts?limit=500").await;
    let zoes: Vec<&Value> = contacts["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["email"].as_str().unwrap().contains("@x.com")
                && c["email"].as_str().unwrap().starts_with('z')
        })
        .collect();
    assert_eq!(
        zoes.len(),
        1,
        "her address composed or decomposed is one contact: {contacts}"
    );

    let preview = api.json("/api/contacts/ann%40x.com/erasure").await;
    assert_eq!(
        preview,
        json!({"email": "ann@x.com", "deliveries": 2, "mentioning": hers.len() - 2}),
        "every encoding of her address is counted, nobody else's (the form's email field makes it hers)"
    );
    // The export handed to her before the erasure holds exactly what the erasure takes.
    let exported: Vec<String> = api
        .text("/api/export?format=ndjson&forget=ANN%40x.com")
        .await
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let mut expected = hers.clone();
    expected.sort();
    let mut got = exported.clone();
    got.sort();
    assert_eq!(got, expected, "the export is what forgetting her erases");

    let forgot: Value = delete(&api, "/api/contacts/ann%40x.com")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(forgot, preview, "what was said is what was done");
    let left: Vec<String> = api.json("/api/events?limit=500").await["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    for id in &others {
        assert!(left.contains(id), "{id}, someone else's, is kept");
    }
    for id in &hers {
        assert!(!left.contains(id), "{id}, hers, is gone");
    }
    // The plus address is its own person, found by its own whole address.
    let plus_preview = api.json("/api/contacts/ann%2Bvip%40x.com/erasure").await;
    assert_eq!(plus_preview["mentioning"], 1, "{plus_preview}");
    // Forgotten by her decomposed, upper-case address: all three of hers go.
    let zoe_forgot: Value = delete(&api, "/api/contacts/ZOE%CC%81%40X.COM")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        zoe_forgot,
        json!({"email": "zoé@x.com", "deliveries": 2, "mentioning": 1}),
        "her deliveries and the escaped upper-case mention"
    );
    running.stop().await;
    for (file, bytes) in store_bytes(dir.path()) {
        for written in [
            "\"ann@x.com\"",
            "ann%40x.com",
            "ann%2540x.com",
            "ann\\u0040x\\u002ecom",
            "zo\\u00c9@x.com",
            "zoé@x.com",
            "zoe\u{301}@x.com",
            "<ann@x.com>",
        ] {
            assert!(
                !holds(&bytes, &written.to_ascii_lowercase()),
                "no byte of {written:?} in {file}"
            );
        }
    }
    assert!(
        store_bytes(dir.path())
            .iter()
            .any(|(_, bytes)| holds(bytes, "joann@x.com")),
        "others' deliveries stay"
    );
    assert_indexes_whole(dir.path());
}

#[test]
fn deliveries_not_indexed_yet_count_as_hers_when_they_are_about_her() {
    use hookscope_core::capture::RawDelivery;
    use hookscope_core::capture::mentions::Address;
    use hookscope_core::store::{deliveries, erasure};
    let dir = tempfile::tempdir().unwrap();
    let path = db::database_path(dir.path());
    db::ensure_data_dir(dir.path()).unwrap();
    let mut conn = db::open_writer(&path, Synchronous::Full).unwrap();
    let raw = |n: i64, body: Vec<u8>| RawDelivery {
        id: format!("01900000-0000-7000-8000-{n:012}"),
        received_at: n,
        endpoint_id: "ep".into(),
        endpoint_name: "ep".into(),
        method: "POST".into(),
        path: "/h/x".into(),
        query: None,
        headers: vec![("content-type".into(), "application/json".into())],
        remote_addr: None,
        client_ip: None,
        via_tunnel: false,
        body: body.into(),
    };
    let tx = conn.transaction().unwrap();
    for (n, body) in [
        (
            1,
            automation("contact.tag.added", MARIE, "Zzyzx", json!({})).body,
        ),
        (
            2,
            automation("contact.optin.completed", MARIE, "Zzyzx", json!({})).body,
        ),
        (
            3,
            automation(
                "contact.tag.added",
                "bob@example.com",
                "B",
                json!({"note": MARIE}),
            )
            .body,
        ),
        (
            4,
            automation("contact.tag.added", "bob@example.com", "B", json!({})).body,
        ),
    ] {
        deliveries::insert(&tx, &raw(n, body)).unwrap();
    }
    tx.commit().unwrap();
    assert_eq!(
        indexer::position(&conn).unwrap(),
        0,
        "nothing is indexed yet"
    );
    let found = erasure::find(&conn, &Address::parse(MARIE).unwrap(), 1 << 20).unwrap();
    assert_eq!(
        (found.keyed.len(), found.mentioning.len()),
        (2, 1),
        "about her: her two; mentioning: Bob's note (not hers counted as mentions)"
    );
    indexer::run_to_end(&mut conn, 1 << 20, |_, _| {}).unwrap();
    let indexed = erasure::find(&conn, &Address::parse(MARIE).unwrap(), 1 << 20).unwrap();
    assert_eq!(
        (indexed.keyed, indexed.mentioning),
        (found.keyed, found.mentioning),
        "the same counts once indexed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_is_bounded_previewed_and_a_stored_absurd_value_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let now = hookscope_core::timefmt::now_micros();
    let hour = 3_600_000_000i64;
    // Ten deliveries from 1 to 10 days ago, and a retention an older Hookscope stored
    // without checking it.
    let lines: Vec<String> = (1..=10)
        .map(|d| {
            json!({
                "id": format!("01900000-0000-7000-8000-{d:012}"),
                "received_at": hookscope_core::timefmt::format_micros(now - d * 24 * hour - hour),
                "endpoint": "ep_old", "method": "POST", "path": "/h/x",
                "headers": [["content-type", "application/json"]],
                "body": {"type": "contact.tag.added",
                         "data": {"contact": {"email": format!("d{d}@example.com")}}},
            })
            .to_string()
        })
        .collect();
    db::ensure_data_dir(dir.path()).unwrap();
    let mut writer = db::open_writer(&db::database_path(dir.path()), Synchronous::Full).unwrap();
    hookscope_core::exchange::import::import(&mut writer, lines.join("\n").as_bytes(), 1 << 20)
        .unwrap();
    hookscope_core::store::settings::put_setting(
        &writer,
        hookscope_core::store::settings::Setting::RetentionDays,
        "999999999",
    )
    .unwrap();
    drop(writer);

    let running = start_server(dir.path()).await;
    let api = Api::of(&running);
    let http = reqwest::Client::new();
    // The start's run: an absurd stored retention prunes nothing and stops nothing.
    support::deliver(
        &http,
        &running.webhook_url,
        &fixture("systeme-settings/sale-new"),
    )
    .await;
    let policy = api.json("/api/retention").await;
    assert_eq!(
        policy["days"],
        Value::Null,
        "an out-of-range stored value keeps everything: {policy}"
    );
    wait_for_events(&api, 11, "nothing was pruned").await;
    assert_eq!(
        api.json("/api/status").await["store"],
        Value::Null,
        "no trouble"
    );

    for bad in [
        json!(0),
        json!(36_501),
        json!(213_503_982),
        json!(999_999_999),
        json!(-1),
        json!(1.5),
        json!("30"),
        json!(u64::MAX),
    ] {
        let answer = put_json(&api, "/api/retention", json!({"days": bad})).await;
        assert_eq!(answer.status(), 400, "days {bad} is refused");
        let preview = post_json(&api, "/api/retention/preview", json!({"days": bad})).await;
        assert_eq!(preview.status(), 400, "a preview of days {bad} is refused");
    }
    let refusal: Value = put_json(&api, "/api/retention", json!({"days": 213_503_982}))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        refusal["message"].as_str().unwrap().contains("1 to 36500"),
        "{refusal}"
    );

    // Before a policy applies: how many it would prune now.
    let preview: Value = post_json(&api, "/api/retention/preview", json!({"days": 5}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        preview,
        json!({"due_now": 0, "after_change": 6}),
        "the six from 5 to 10 days old"
    );
    let longest: Value = post_json(&api, "/api/retention/preview", json!({"days": 36_500}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        longest["after_change"], 0,
        "the longest retention prunes nothing"
    );
    assert_eq!(
        api.json("/api/status").await["events"],
        11,
        "a preview changes nothing"
    );
    assert!(
        put_json(&api, "/api/retention", json!({"days": 36_500}))
            .await
            .status()
            .is_success()
    );
    assert!(
        put_json(&api, "/api/retention", json!({"days": 5}))
            .await
            .status()
            .is_success()
    );
    // The run prunes what the preview said (a later run may record 0 since).
    wait_for_events(&api, 5, "the newest four and the new one are kept").await;
    running.stop().await;
}

#[test]
fn the_cutoff_never_moves_past_now() {
    use hookscope_core::store::retention::{MOST_DAYS, cutoff};
    let now = hookscope_core::timefmt::now_micros();
    for days in [1, 30, MOST_DAYS, 213_503_982, u32::MAX] {
        if let Ok(at) = cutoff(now, days) {
            assert!(at < now, "{days} days before now is before now");
        }
    }
    assert!(
        cutoff(i64::MIN + 1, 1).is_err(),
        "an overflow is an error, not a wrap"
    );
    assert_eq!(cutoff(now, 1).unwrap(), now - 86_400_000_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_the_writer_fails_that_work_alone_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let running = start_server(dir.path()).await;
    let api = Api::of(&running);
    let http = reqwest::Client::new();
    support::deliver(
        &http,
        &running.webhook_url,
        &fixture("systeme-settings/sale-new"),
    )
    .await;
    let failed = running
        .state
        .store
        .writer
        .run(|conn| -> hookscope_core::Result<()> {
            // Half of a change, then a slip: none of it may stay.
            let tx = conn.transaction()?;
            tx.execute("DELETE FROM deliveries", [])?;
            panic!("injected: an arithmetic slip");
        })
        .await;
    let error = failed.expect_err("the work fails");
    assert_eq!(error.code(), "fault", "{error}");
    let status = api.json("/api/status").await;
    assert_eq!(
        status["store"]["code"], "fault",
        "the status says so: {status}"
    );
    assert!(
        status["store"]["message"]
            .as_str()
            .unwrap()
            .contains("an arithmetic slip"),
        "{status}"
    );
    // The writer goes on: deliveries are acknowledged and nothing was half-deleted.
    for f in deliveries().into_iter().take(3) {
        support::deliver(&http, &running.webhook_url, &f).await;
    }
    wait_for_events(&api, 4, "the first delivery and three more").await;
    assert_eq!(
        api.json("/api/status").await["store"]["code"],
        "fault",
        "a commit does not hide that a thread failed"
    );
    running.stop().await;
}

/// A store whose deliveries' log holds frames no checkpoint has copied, and a reader keeping
/// a snapshot in it: a scrub's truncate gives up at once (no busy wait on this connection)
/// while the reader stays. The string `erased` is in the log.
fn scrub_against_a_reader() -> (
    tempfile::TempDir,
    std::path::PathBuf,
    rusqlite::Connection,
    rusqlite::Connection,
) {
    let dir = tempfile::tempdir().unwrap();
    let path = db::database_path(dir.path());
    let writer = db::open_writer(&path, Synchronous::Full).unwrap();
    writer
        .execute_batch(
            "CREATE TABLE main.scratch (text TEXT);
             INSERT INTO main.scratch VALUES ('erased');
             DELETE FROM main.scratch;",
        )
        .unwrap();
    writer.busy_timeout(Duration::ZERO).unwrap();
    let reader = db::open_reader(&path).unwrap();
    reader
        .execute_batch("BEGIN; SELECT count(*) FROM scratch;")
        .unwrap();
    let log = path.with_extension("db-wal");
    assert!(holds(&std::fs::read(&log).unwrap(), "erased"));
    (dir, path, writer, reader)
}

/// A scrub that meets a reader in the log tries again until it leaves, then empties the
/// log: nothing erased stays readable, and nothing is left pending. While it waits it is
/// still pending, so a scrub killed then is done again at the next start.
#[test]
fn a_scrub_waits_out_a_reader_then_empties_the_log() {
    use hookscope_core::store::{erasure, settings};
    let (_dir, path, writer, reader) = scrub_against_a_reader();
    settings::put_setting(&writer, settings::Setting::ErasureScrubPending, "1").unwrap();
    let looking = path.clone();
    let leaving = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        // What a start would find if the scrub were killed now.
        let other = db::open_reader(&looking).unwrap();
        let pending_while_waiting = erasure::scrub_pending(&other).unwrap();
        reader.execute_batch("COMMIT").unwrap();
        pending_while_waiting
    });
    erasure::scrub(&writer).unwrap();
    assert!(
        leaving.join().unwrap(),
        "the scrub is pending until the logs are empty"
    );
    for file in [path.clone(), path.with_extension("db-wal")] {
        assert!(
            !holds(&std::fs::read(&file).unwrap(), "erased"),
            "{file:?} holds no erased byte"
        );
    }
    assert!(!erasure::scrub_pending(&writer).unwrap());
}

/// A reader that never leaves: the scrub gives up after its patience (10 s), says the
/// store was busy, and stays pending so that a start finishes it.
#[test]
fn a_scrub_that_cannot_empty_the_log_stays_pending() {
    use hookscope_core::store::{erasure, settings};
    let (_dir, _path, writer, reader) = scrub_against_a_reader();
    // As an erasure leaves it.
    settings::put_setting(&writer, settings::Setting::ErasureScrubPending, "1").unwrap();
    let started = std::time::Instant::now();
    let error = erasure::scrub(&writer).unwrap_err();
    // It kept trying (a background checkpoint holds the log only for moments), and then
    // stopped.
    let tried_for = started.elapsed();
    assert!(
        (Duration::from_secs(9)..Duration::from_secs(20)).contains(&tried_for),
        "{tried_for:?}"
    );
    assert!(
        error.to_string().contains("could not be truncated"),
        "{error}"
    );
    assert!(erasure::scrub_pending(&writer).unwrap());
    drop(reader);
}
