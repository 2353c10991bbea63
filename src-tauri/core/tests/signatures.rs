//! systeme.io's signed deliveries over real HTTP: verdicts at capture, re-checked on the
//! stored bytes when a secret is set later, filtered, and the secret never shown.

use crate::support;

use serde_json::{Value, json};
use support::{Api, all_fixtures, deliver, fixture, start_server};

/// The secret `fixtures/make_fixtures.py` signs the Settings-webhook fixtures with.
pub const TEST_SECRET: &str = "whsec-test-0123456789abcdef";

async fn patch(api: &Api, path: &str, body: Value) -> reqwest::Response {
    api.http
        .patch(format!("{}{path}", api.base))
        .bearer_auth(&api.token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn verdicts(api: &Api, filter: &str) -> Vec<(String, String)> {
    let page = api.json(&format!("/api/events?limit=200{filter}")).await;
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap().to_string(),
                e["signature"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn signatures_are_checked_and_rechecked_when_the_secret_changes() {
    let dir = tempfile::tempdir().unwrap();
    let running = start_server(dir.path()).await;
    let api = Api::of(&running);
    let http = reqwest::Client::new();

    let mut signed = Vec::new();
    let mut unsigned = Vec::new();
    for f in all_fixtures() {
        let id = deliver(&http, &running.webhook_url, &f).await;
        if f.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("x-webhook-signature"))
        {
            signed.push(id);
        } else {
            unsigned.push(id);
        }
    }
    assert!(signed.len() >= 5, "the Settings fixtures are signed");
    // The same signed delivery with one byte changed on the way.
    let mut tampered = fixture("systeme-settings/sale-new");
    let at = tampered.body.iter().position(|b| *b == b'5').unwrap();
    tampered.body[at] = b'9';
    let tampered_id = deliver(&http, &running.webhook_url, &tampered).await;

    let all = verdicts(&api, "").await;
    let of = |id: &str| all.iter().find(|(i, _)| i == id).unwrap().1.clone();
    for id in signed.iter().chain([&tampered_id]) {
        assert_eq!(of(id), "no_secret", "signed, but no secret yet");
    }
    for id in &unsigned {
        assert_eq!(of(id), "unsigned");
    }
    let event = api.json(&format!("/api/events/{}", unsigned[0])).await;
    assert_eq!(event["source_ok"], Value::Null, "a local sender is neither");

    // The secret set later re-checks what is stored.
    let endpoint = running.state.store.default_endpoint().unwrap();
    let path = format!("/api/endpoints/{}", endpoint.id);
    let answer = patch(&api, &path, json!({"secret": format!("{TEST_SECRET}\n")})).await;
    assert_eq!(answer.status(), 200);
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(answer["has_secret"], true);
    let all = verdicts(&api, "").await;
    let of = |id: &str| all.iter().find(|(i, _)| i == id).unwrap().1.clone();
    for id in &signed {
        assert_eq!(of(id), "valid", "{id}");
    }
    assert_eq!(of(&tampered_id), "invalid");
    assert_eq!(
        verdicts(&api, "&signature=invalid").await,
        vec![(tampered_id.clone(), "invalid".to_string())]
    );
    let one = api.json(&format!("/api/events/{}", signed[0])).await;
    assert_eq!(one["signature"], "valid");

    // New deliveries are checked as they arrive; the stream says so too.
    let fresh = deliver(
        &http,
        &running.webhook_url,
        &fixture("systeme-settings/sale-new"),
    )
    .await;
    assert_eq!(
        api.json(&format!("/api/events/{fresh}")).await["signature"],
        "valid"
    );

    // Never shown, never exported.
    for listing in [
        api.json("/api/endpoints").await.to_string(),
        api.json("/api/status").await.to_string(),
        api.text("/api/export").await,
    ] {
        assert!(!listing.contains(TEST_SECRET));
    }
    assert_eq!(
        api.json("/api/endpoints").await["endpoints"][0]["has_secret"],
        true
    );

    // A wrong secret makes them invalid; clearing it goes back to "no secret".
    patch(&api, &path, json!({"secret": "not the secret"})).await;
    assert!(verdicts(&api, "&signature=valid").await.is_empty());
    let cleared = patch(&api, &path, json!({"secret": null})).await;
    assert_eq!(cleared.json::<Value>().await.unwrap()["has_secret"], false);
    assert_eq!(
        verdicts(&api, "&signature=no_secret").await.len(),
        signed.len() + 2
    );

    // Bad requests say what is wrong and change nothing.
    for (body, needle) in [
        (json!({"secret": "  "}), "empty"),
        (json!({}), "nothing to change"),
    ] {
        let refused = patch(&api, &path, body).await;
        assert_eq!(refused.status(), 400);
        let error: Value = refused.json().await.unwrap();
        assert!(
            error["message"].as_str().unwrap().contains(needle),
            "{error}"
        );
    }
    let refused = api.get("/api/events?signature=maybe").send().await.unwrap();
    assert_eq!(refused.status(), 400);
    // Renaming leaves the secret alone.
    patch(&api, &path, json!({"secret": TEST_SECRET})).await;
    let renamed: Value = patch(&api, &path, json!({"name": "Sales"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (renamed["name"].as_str(), renamed["has_secret"].as_bool()),
        (Some("Sales"), Some(true))
    );
    running.stop().await;
}

// ---- retries and repeats --------------------------------------------------------------

#[tokio::test]
async fn retries_of_one_message_are_attempts_and_identical_automation_bodies_are_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let running = start_server(dir.path()).await;
    let api = Api::of(&running);
    let http = reqwest::Client::new();

    // systeme.io retries a Settings webhook with the same message id.
    let sale = fixture("systeme-settings/sale-new");
    let first = deliver(&http, &running.webhook_url, &sale).await;
    let mut retry = sale.clone();
    for (name, value) in &mut retry.headers {
        if name.eq_ignore_ascii_case("x-webhook-delivery-attempt-id") {
            *value = "01a0e483-0a93-7c11-9d55-2b8f3a1c0002".into();
        }
    }
    let second = deliver(&http, &running.webhook_url, &retry).await;
    let a = api.json(&format!("/api/events/{first}")).await;
    let b = api.json(&format!("/api/events/{second}")).await;
    assert_eq!(
        (a["attempt"].as_i64(), b["attempt"].as_i64()),
        (Some(1), Some(2))
    );
    assert_eq!(a["message_id"], b["message_id"]);
    assert!(a["message_id"].as_str().unwrap().starts_with("01a0e483"));
    let contacts = api.json("/api/contacts?q=marie.dupont").await;
    assert_eq!(
        contacts["contacts"][0]["events"], 1,
        "one message, counted once"
    );
    let timeline = api.json("/api/events?email=marie.dupont@example.fr").await;
    assert_eq!(
        timeline["events"].as_array().unwrap().len(),
        2,
        "both attempts are kept"
    );

    // Automation webhooks carry no id: an identical body shortly after is a probable repeat.
    let tag = fixture("systeme-automation/tag-added");
    let original = deliver(&http, &running.webhook_url, &tag).await;
    let again = deliver(&http, &running.webhook_url, &tag).await;
    let again = api.json(&format!("/api/events/{again}")).await;
    assert_eq!(again["repeat_of"], original.as_str());
    assert_eq!(again["attempt"], 1);
    assert_eq!(
        api.json(&format!("/api/events/{original}")).await["repeat_of"],
        Value::Null
    );
    // Signed deliveries are told apart by their message id, never by their body.
    assert_eq!(b["repeat_of"], Value::Null);
    running.stop().await;
}

/// The same unsigned automation body, delivered as `id` at `micros`.
fn unsigned_copy(id: &str, micros: i64) -> hookscope_core::capture::RawDelivery {
    hookscope_core::capture::RawDelivery {
        id: id.into(),
        received_at: micros,
        endpoint_id: "ep".into(),
        endpoint_name: "Default".into(),
        method: "POST".into(),
        path: "/h/t".into(),
        query: None,
        headers: vec![("content-type".into(), "application/json".into())],
        remote_addr: None,
        client_ip: None,
        via_tunnel: false,
        body: bytes::Bytes::from_static(
            br#"{"type":"contact.tag.added","data":{"contact":{"email":"a@b.c"}}}"#,
        ),
    }
}

#[test]
fn repeats_are_only_flagged_within_the_window() {
    use hookscope_core::store::db::{self, Synchronous};
    use hookscope_core::store::events::write::REPEAT_WINDOW_MICROS;
    use hookscope_core::store::{deliveries, indexer};

    let dir = tempfile::tempdir().unwrap();
    let mut conn = db::open_writer(&db::database_path(dir.path()), Synchronous::Normal).unwrap();
    let at = unsigned_copy;
    let tx = conn.transaction().unwrap();
    for (id, micros) in [
        ("a", 0),
        ("b", REPEAT_WINDOW_MICROS),
        ("c", 3 * REPEAT_WINDOW_MICROS),
    ] {
        assert!(deliveries::insert(&tx, &at(id, micros)).unwrap().is_some());
    }
    assert_eq!(
        deliveries::insert(&tx, &at("a", 0)).unwrap(),
        None,
        "already stored"
    );
    tx.commit().unwrap();
    indexer::run_to_end(&mut conn, 1 << 20, |_, _| {}).unwrap();
    let repeat_of = |id: &str| -> Option<String> {
        conn.query_row("SELECT repeat_of FROM events WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .unwrap()
    };
    assert_eq!(repeat_of("a"), None);
    assert_eq!(repeat_of("b"), Some("a".into()), "at the edge");
    assert_eq!(repeat_of("c"), None, "long after");
}

/// Repeats are looked up by five-minute window (the bodies' index is kept in time order):
/// copies on either side of a window's edge are found, whether the earlier copy is indexed
/// first, arrives later (an import), or is erased, and each time as a reindex finds them.
#[test]
fn repeats_across_a_window_edge_are_found_in_any_order_and_after_an_erasure() {
    use hookscope_core::store::db::{self, Synchronous};
    use hookscope_core::store::events::write::REPEAT_WINDOW_MICROS as W;
    use hookscope_core::store::{deliveries, erasure, indexer};

    let copy = unsigned_copy;
    // `a` in the middle of a window; `b` just under a window later, in the next one; `c`
    // a window and ten seconds after `a`: `a` is out of its reach, `b` is not.
    let pairs = |expected: &[(&str, Option<&str>)]| -> Vec<(String, Option<String>)> {
        expected
            .iter()
            .map(|(id, first)| (id.to_string(), first.map(str::to_string)))
            .collect()
    };
    let t0 = 1_780_000_000_000_000 / W * W + W / 2;
    let a = copy("a", t0);
    let b = copy("b", t0 + W - 1);
    let c = copy("c", t0 + W + 10_000_000);
    assert_ne!(
        a.received_at / W,
        b.received_at / W,
        "b is in the next window"
    );
    for order in [[&a, &b, &c], [&c, &b, &a], [&b, &c, &a]] {
        let dir = tempfile::tempdir().unwrap();
        let mut conn =
            db::open_writer(&db::database_path(dir.path()), Synchronous::Normal).unwrap();
        // Stored and indexed one at a time, in this order.
        for delivery in order {
            let tx = conn.transaction().unwrap();
            deliveries::insert(&tx, delivery).unwrap().unwrap();
            tx.commit().unwrap();
            indexer::run_to_end(&mut conn, 1 << 20, |_, _| {}).unwrap();
        }
        let repeats = |conn: &rusqlite::Connection| -> Vec<(String, Option<String>)> {
            conn.prepare("SELECT id, repeat_of FROM events ORDER BY id")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        };
        assert_eq!(
            repeats(&conn),
            pairs(&[("a", None), ("b", Some("a")), ("c", Some("b"))]),
            "indexed in the order {:?}",
            order.map(|d| d.id.clone())
        );
        // `a` erased: `b` is the first of its body, `c` still repeats it.
        let a_seq: i64 = conn
            .query_row("SELECT seq FROM deliveries WHERE id = 'a'", [], |r| {
                r.get(0)
            })
            .unwrap();
        let tx = conn.transaction().unwrap();
        let mut affected = erasure::Affected::default();
        erasure::remove(&tx, &[a_seq], &mut affected, 1 << 20).unwrap();
        assert!(!erasure::finish_erasure(&tx, &mut affected).unwrap());
        tx.commit().unwrap();
        let repaired = repeats(&conn);
        assert_eq!(repaired, pairs(&[("b", None), ("c", Some("b"))]));
        indexer::reset(&mut conn).unwrap();
        indexer::run_to_end(&mut conn, 1 << 20, |_, _| {}).unwrap();
        assert_eq!(repeats(&conn), repaired, "as a reindex finds them");
    }
}
