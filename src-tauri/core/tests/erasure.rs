//! Captures are personal data. Forgetting a contact removes every delivery about them or
//! mentioning their email, and every trace derived from those: no byte of their email,
//! name or a string unique to their payloads remains in the database file, its log, the
//! full-text index or an export, and what remains is what a reindex of it would make.
//! Retention prunes exactly what is older than the cutoff while deliveries keep arriving.

mod support;

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
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("hookscope.db")
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
    let conn = rusqlite::Connection::open(db::database_path(dir)).unwrap();
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
        if name.starts_with("hookscope.db") {
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
    let forgot: Value = api
        .http
        .delete(format!("{}/api/contacts/{email}", api.base))
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap()
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
        let conn = rusqlite::Connection::open(db::database_path(dir.path())).unwrap();
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
