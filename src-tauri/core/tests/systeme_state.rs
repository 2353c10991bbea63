//! What Hookscope derives from systeme.io deliveries over real HTTP: the contact card
//! (checked against a rebuild from the stored bytes), schema drift and shapes, the funnel
//! report, and the upgrade of a store written before any of them existed.

use crate::support;

use bytes::Bytes;
use hookscope_core::capture::card::Card;
use hookscope_core::capture::{Capture, Decoding, RawDelivery};
use hookscope_core::store::cards;
use hookscope_core::store::db;
use serde_json::{Value, json};
use support::{Api, Fixture, deliver, every_answer, fixture, start_server};

/// A fixture about someone else: every contact email in it (not the account's) replaced.
fn about(name: &str, email: &str) -> Fixture {
    let mut f = fixture(name);
    let mut body: Value = serde_json::from_slice(&f.body).unwrap();
    fn swap(v: &mut Value, email: &str) {
        match v {
            Value::Object(map) => {
                for (key, child) in map.iter_mut() {
                    if key == "account" {
                        continue;
                    }
                    if key == "email" && child.is_string() {
                        *child = Value::String(email.to_string());
                    } else {
                        swap(child, email);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|c| swap(c, email)),
            _ => {}
        }
    }
    swap(&mut body, email);
    f.body = serde_json::to_vec(&body).unwrap();
    f
}

fn edited(mut f: Fixture, edit: impl FnOnce(&mut Value)) -> Fixture {
    let mut body: Value = serde_json::from_slice(&f.body).unwrap();
    edit(&mut body);
    f.body = serde_json::to_vec(&body).unwrap();
    f
}

/// The card folded from scratch: each counted event's stored bytes decoded again.
fn card_from_stored_bytes(dir: &std::path::Path, key: &str) -> Card {
    let conn = db::open_reader(&db::database_path(dir)).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT d.id, d.received_at, d.endpoint_id, d.endpoint_name, d.method, d.path,
                    d.query, d.headers, d.remote_addr, d.client_ip, d.via_tunnel, d.body
             FROM events e JOIN deliveries d ON d.seq = e.seq
             WHERE e.contact_key = ?1 AND e.attempt = 1 AND e.repeat_of IS NULL
               AND e.signature <> 'invalid'
             ORDER BY e.received_at, e.seq",
        )
        .unwrap();
    let mut card = Card::default();
    let mut rows = stmt.query([key]).unwrap();
    while let Some(row) = rows.next().unwrap() {
        let headers: String = row.get("headers").unwrap();
        let raw = RawDelivery {
            id: row.get("id").unwrap(),
            received_at: row.get("received_at").unwrap(),
            endpoint_id: row.get("endpoint_id").unwrap(),
            endpoint_name: row.get("endpoint_name").unwrap(),
            method: row.get("method").unwrap(),
            path: row.get("path").unwrap(),
            query: row.get("query").unwrap(),
            headers: serde_json::from_str(&headers).unwrap(),
            remote_addr: row.get("remote_addr").unwrap(),
            client_ip: row.get("client_ip").unwrap(),
            via_tunnel: row.get("via_tunnel").unwrap(),
            body: Bytes::from(row.get::<_, Vec<u8>>("body").unwrap()),
        };
        let at = raw.received_at;
        let capture = Capture::build(raw, &Decoding::new(1 << 20));
        let when =
            hookscope_core::store::cards::happened(capture.decoded.occurred_at.as_deref(), at);
        for fact in &capture.facts {
            card.apply(fact, when);
        }
    }
    card
}

#[tokio::test]
async fn the_contact_card_follows_the_events_and_equals_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let running = start_server(dir.path()).await;
    let api = Api::of(&running);
    let http = reqwest::Client::new();
    let marie = "marie.dupont@example.fr";

    let tag = |name: &str, tag: &str| {
        let tag = tag.to_string();
        edited(about(name, marie), move |b| {
            if b["data"].is_object() {
                b["data"]["tag"]["name"] = json!(tag);
            } else {
                b["tag"]["name"] = json!(tag);
            }
        })
    };
    let sequence = [
        about("systeme-settings/contact-opt-in", marie),
        tag("systeme-settings/contact-tag-added", "Client"),
        tag("systeme-automation/tag-added", "Lead"),
        tag("systeme-automation/tag-added", "VIP"),
        // Her tags as systeme.io lists them with the removal: the card takes them as the
        // state at that moment.
        edited(
            tag("systeme-settings/contact-tag-removed-nested", "Client"),
            |b| {
                b["contact"]["contact"]["tags"] =
                    json!([{"id": 1, "name": "Lead"}, {"id": 2, "name": "VIP"}]);
            },
        ),
        about("systeme-automation/sale-completed", marie),
        fixture("systeme-settings/sale-new"),
        // systeme.io retrying the same message: one more attempt, not one more purchase.
        fixture("systeme-settings/sale-new"),
        fixture("systeme-settings/sale-canceled"),
        about("systeme-automation/course-enrolled", marie),
        about("systeme-automation/course-bundle-enrolled", marie),
        about("systeme-automation/webinar-registered", marie),
        about("systeme-automation/campaign-finished", marie),
        about("systeme-automation/page-visited", marie),
        edited(about("systeme-automation/page-visited", marie), |b| {
            b["created_at"] = json!("2021-10-05T16:30:00+00:00") // not a byte-identical repeat
        }),
        about("systeme-automation/email-link-clicked", marie),
        about("systeme-automation/optin-funnel-step", marie),
        // Someone else's events stay off Marie's card.
        fixture("systeme-automation/tag-added"),
    ];
    for f in &sequence {
        deliver(&http, &running.webhook_url, f).await;
    }

    // Any case finds the contact.
    let answer = api.json("/api/contacts/Marie.Dupont@Example.FR").await;
    assert_eq!(answer["contact"]["email"], marie);
    let card = &answer["card"];
    assert_eq!(
        card["tags"],
        json!(["Lead", "VIP"]),
        "added minus removed, in order"
    );
    let purchases = card["purchases"].as_array().unwrap();
    assert_eq!(purchases.len(), 2, "{purchases:?}");
    assert_eq!(purchases[0]["amount_cents"], 583);
    assert_eq!(purchases[0]["currency"], "EUR");
    assert_eq!(purchases[0]["canceled"], false);
    assert_eq!(purchases[1]["order_id"], "7771001");
    assert_eq!(purchases[1]["offer"], "Blog qui rapporte");
    assert_eq!(
        purchases[1]["canceled"], true,
        "SALE_CANCELED marks its order"
    );
    let enrolments: Vec<&str> = card["enrolments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(enrolments, ["course", "bundle"]);
    assert_eq!(card["webinars"].as_array().unwrap().len(), 1);
    assert_eq!(card["campaigns"].as_array().unwrap().len(), 1);
    assert_eq!(card["pages"][0]["visits"], 2);
    assert_eq!(
        card["pages"][0]["step"]["step"],
        "Thank You / Download Page"
    );
    assert_eq!(card["email_clicks"][0]["subject"], "test email webhook");
    let optins = card["optins"].as_array().unwrap();
    assert_eq!(optins.len(), 2);
    assert_eq!(
        optins[1]["step"]["funnel"],
        "webhook data structure documentation"
    );

    // The stored card is exactly what the events give when folded from scratch.
    let stored: Card = serde_json::from_value(card.clone()).unwrap();
    assert_eq!(stored, card_from_stored_bytes(dir.path(), marie));
    let conn = db::open_reader(&db::database_path(dir.path())).unwrap();
    assert_eq!(stored, cards::rebuild(&conn, marie).unwrap().0);

    // An older event imported afterwards takes its place in history.
    let export = api
        .text(&format!(
            "/api/export?email={marie}&type=contact.tag.added&format=ndjson"
        ))
        .await;
    let mut early: Value = serde_json::from_str(export.lines().next().unwrap()).unwrap();
    early["id"] = json!("01800000-0000-7000-8000-000000000001");
    early["received_at"] = json!("2020-01-01T00:00:00Z");
    early["body"]["data"]["tag"]["name"] = json!("Early bird");
    let mut writer =
        db::open_writer(&db::database_path(dir.path()), db::Synchronous::Full).unwrap();
    // Imported while this Hookscope runs: its indexer derives it.
    let report = hookscope_core::exchange::import::import(
        &mut writer,
        early.to_string().as_bytes(),
        1 << 20,
    )
    .unwrap();
    assert_eq!(report.imported, 1);
    let answer = api.json(&format!("/api/contacts/{marie}")).await;
    assert_eq!(
        answer["card"]["tags"],
        json!(["Lead", "VIP"]),
        "it came before her own tag list (with the removal), which does not hold it"
    );
    let after_import: Card = serde_json::from_value(answer["card"].clone()).unwrap();
    assert_eq!(after_import, card_from_stored_bytes(dir.path(), marie));

    // The next live event stores a card that still agrees.
    deliver(
        &http,
        &running.webhook_url,
        &tag("systeme-automation/tag-removed", "VIP"),
    )
    .await;
    let answer = api.json(&format!("/api/contacts/{marie}")).await;
    assert_eq!(answer["card"]["tags"], json!(["Lead"]));
    let stored_row: Option<String> = conn
        .query_row(
            "SELECT card FROM contact_cards WHERE contact_key = ?1",
            [marie],
            |r| r.get(0),
        )
        .ok();
    let stored_row: Card = serde_json::from_str(&stored_row.expect("a stored card")).unwrap();
    assert_eq!(stored_row, card_from_stored_bytes(dir.path(), marie));

    let missing = api
        .get("/api/contacts/nobody@example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    running.stop().await;
}

#[tokio::test]
async fn drift_is_flagged_on_a_modified_delivery_and_shapes_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let running = start_server(dir.path()).await;
    let api = Api::of(&running);
    let http = reqwest::Client::new();
    let sale = |email: &str| about("systeme-automation/sale-completed", email);

    let first = deliver(&http, &running.webhook_url, &sale("a@example.com")).await;
    deliver(&http, &running.webhook_url, &sale("b@example.com")).await;
    // `fields` as PHP's empty list where an object was seen: a known variant.
    let variant = edited(sale("c@example.com"), |b| {
        b["data"]["customer"]["fields"] = json!([])
    });
    let variant = deliver(&http, &running.webhook_url, &variant).await;
    let changed = edited(sale("d@example.com"), |b| {
        b["data"]["customer"]["phone"] = json!({"number": "+33 6"});
        b["data"]["offer_price_plan"]["direct_charge_amount"] = json!("5.83");
        b["data"].as_object_mut().unwrap().remove("order_item");
    });
    let changed = deliver(&http, &running.webhook_url, &changed).await;

    for quiet in [&first, &variant] {
        let event = api.json(&format!("/api/events/{quiet}")).await;
        assert_eq!(event["drift"], Value::Null, "{quiet}");
    }
    let event = api.json(&format!("/api/events/{changed}")).await;
    let drift: Vec<(String, String)> = event["drift"]
        .as_array()
        .expect("drift listed")
        .iter()
        .map(|c| {
            (
                c["path"].as_str().unwrap().to_string(),
                c["change"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected = [
        ("data.customer.phone", "added"),
        ("data.offer_price_plan.direct_charge_amount", "retyped"),
        ("data.order_item", "dropped"),
    ];
    assert_eq!(
        drift,
        expected
            .iter()
            .map(|(p, c)| (p.to_string(), c.to_string()))
            .collect::<Vec<_>>()
    );
    let retyped = &event["drift"][1];
    assert_eq!(retyped["was"], json!(["number"]));
    assert_eq!(retyped["now"], json!(["string"]));

    let drifted = api.json("/api/events?drift=true").await;
    let ids: Vec<&str> = drifted["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [changed.as_str()]);
    let bad = api.get("/api/events?drift=maybe").send().await.unwrap();
    assert_eq!(bad.status(), 400);

    let shapes = api.json("/api/shapes").await;
    assert_eq!(
        shapes["shapes"][0],
        json!({"event_type": "customer.sale.completed", "deliveries": 4, "drifted": 1})
    );
    let shape = api.json("/api/shapes/customer.sale.completed").await;
    assert_eq!(shape["deliveries"], 4);
    let path = |p: &str| {
        shape["paths"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["path"] == p)
            .unwrap_or_else(|| panic!("{p} in the shape"))
            .clone()
    };
    assert_eq!(
        path("data.offer_price_plan.direct_charge_amount")["kinds"],
        json!({"number": 3, "string": 1})
    );
    assert_eq!(path("data.order_item")["seen"], 3);
    assert_eq!(path("data.order_item")["always"], false);
    assert_eq!(path("data.customer.email")["always"], true);
    assert_eq!(
        path("data.order_item.resources[].type")["kinds"],
        json!({"string": 3})
    );
    let unknown = api
        .get("/api/shapes/nothing.like.this")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    running.stop().await;
}

#[tokio::test]
async fn the_funnel_report_counts_optins_sales_and_revenue_per_funnel_and_offer() {
    let dir = tempfile::tempdir().unwrap();
    let running = start_server(dir.path()).await;
    let api = Api::of(&running);
    let http = reqwest::Client::new();
    let optin = |email: &str| about("systeme-automation/optin-funnel-step", email);
    // A sale in the opt-in's funnel (614554), with its own order number.
    let sale = |email: &str, order: i64| {
        edited(
            about("systeme-automation/sale-completed", email),
            move |b| {
                b["data"]["funnel_step"]["funnel"] =
                    json!({"id": 614554, "name": "webhook data structure documentation"});
                b["data"]["order"]["id"] = json!(order);
            },
        )
    };
    let started = hookscope_core::timefmt::format_micros(hookscope_core::timefmt::now_micros());
    for f in [
        optin("a@example.com"),
        optin("b@example.com"),
        sale("a@example.com", 1),
        sale("c@example.com", 2), // bought without opting in
        fixture("systeme-settings/sale-new"),
        fixture("systeme-settings/sale-new"), // a retry
        fixture("systeme-settings/sale-canceled"),
    ] {
        deliver(&http, &running.webhook_url, &f).await;
    }
    let report = api.json("/api/funnels").await;
    let funnels = report["funnels"].as_array().unwrap();
    assert_eq!(funnels.len(), 2, "{report}");
    let documentation = &funnels[0];
    assert_eq!(documentation["funnel_id"], "614554");
    assert_eq!(documentation["optins"], 2);
    assert_eq!(documentation["buyers"], 1);
    assert_eq!(documentation["conversion"], 0.5);
    assert_eq!(documentation["sales"], 2);
    assert_eq!(
        documentation["revenue"],
        json!([{"currency": "EUR", "amount_cents": 1166}])
    );
    assert_eq!(documentation["offers"][0]["offer_id"], "19");
    let blog = &funnels[1];
    assert_eq!(blog["funnel"], "Créer un blog");
    assert_eq!(blog["sales"], 1, "the retry is the same sale");
    assert_eq!(blog["canceled"], 1);
    assert_eq!(blog["optins"], 0);
    assert_eq!(blog["conversion"], Value::Null);
    assert_eq!(
        blog["offers"][0]["canceled_amount"],
        json!([{"currency": "EUR", "amount_cents": 4700}])
    );

    let before = api.json(&format!("/api/funnels?until={started}")).await;
    assert_eq!(before["funnels"], json!([]), "nothing before the period");
    let bad = api
        .get("/api/funnels?since=yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    running.stop().await;
}

#[tokio::test]
async fn a_store_from_before_facts_is_upgraded_and_derived_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    db::ensure_data_dir(dir.path()).unwrap();
    let path = db::database_path(dir.path());
    {
        // The first released schema, with two of Marie's events as it stored them.
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        rusqlite_migration::Migrations::new(vec![rusqlite_migration::M::up(include_str!(
            "../migrations/20261128_0001_capture.sql"
        ))])
        .to_latest(&mut conn)
        .unwrap();
        for (i, name) in [
            "systeme-settings/contact-tag-added",
            "systeme-settings/sale-new",
        ]
        .iter()
        .enumerate()
        {
            let f = fixture(name);
            conn.execute(
                "INSERT INTO events (id, received_at, endpoint_id, endpoint_name, method, path,
                    headers, size, body_kind, source, family, event_type, label, summary,
                    contact_key, contact_email, body)
                 VALUES (?1, ?2, 'old', 'Old', 'POST', '/h/x', ?3, ?4, 'json', 'systeme_settings',
                    'sale', ?5, 'Old', 'Old', 'marie.dupont@example.fr', 'marie.dupont@example.fr', ?6)",
                rusqlite::params![
                    format!("0190000{i}-0000-7000-8000-000000000000"),
                    1_700_000_000_000_000i64 + i as i64,
                    serde_json::to_string(&f.headers).unwrap(),
                    f.body.len() as i64,
                    f.headers.iter().find(|(n, _)| n == "x-webhook-event").unwrap().1,
                    f.body,
                ],
            )
            .unwrap();
        }
        conn.execute(
            "INSERT INTO contacts (key, events, first_seen, last_seen, last_event_id, last_label,
                last_summary) VALUES ('marie.dupont@example.fr', 2, 1, 2, 'x', 'Old', 'Old')",
            [],
        )
        .unwrap();
    }
    let running = start_server(dir.path()).await;
    let api = Api::of(&running);
    let mut card = Value::Null;
    for _ in 0..100 {
        card = api.json("/api/contacts/marie.dupont@example.fr").await["card"].clone();
        if card["purchases"].as_array().is_some_and(|p| !p.is_empty()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(card["tags"], json!(["Client"]));
    assert_eq!(card["purchases"][0]["order_id"], "7771001");
    let shapes = api.json("/api/shapes").await;
    assert_eq!(shapes["shapes"].as_array().unwrap().len(), 2, "{shapes}");
    let conn = db::open_reader(&path).unwrap();
    assert_eq!(
        hookscope_core::store::indexer::position(&conn).unwrap(),
        hookscope_core::store::deliveries::last_seq(&conn).unwrap(),
        "the indexer derived every delivery of the earlier store and said so"
    );
    running.stop().await;
}

/// What the store derived: each event's attempt and repeat, each contact's count and card,
/// and the funnel report.
fn derived(dir: &std::path::Path) -> Value {
    let conn = db::open_reader(&db::database_path(dir)).unwrap();
    let mut events = conn
        .prepare("SELECT id, attempt, repeat_of FROM events ORDER BY id")
        .unwrap();
    let events: Vec<Value> = events
        .query_map([], |r| {
            Ok(json!([
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<String>>(2)?
            ]))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut contacts = conn
        .prepare("SELECT key, events FROM contacts ORDER BY key")
        .unwrap();
    let contacts: Vec<(String, i64)> = contacts
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let cards: Vec<Value> = contacts
        .iter()
        .map(|(key, _)| serde_json::to_value(cards::current(&conn, key).unwrap()).unwrap())
        .collect();
    let funnels = hookscope_core::store::funnels::report(&conn, &Default::default()).unwrap();
    json!({"events": events, "contacts": contacts, "cards": cards, "funnels": funnels})
}

#[tokio::test]
async fn an_export_imported_in_any_order_counts_retries_and_repeats_as_the_store_did() {
    let dir = tempfile::tempdir().unwrap();
    let running = start_server(dir.path()).await;
    let http = reqwest::Client::new();
    let marie = "marie.dupont@example.fr";
    let tag = || about("systeme-automation/tag-added", marie);
    // One sale delivered three times (one message id), one automation body three times
    // (probable repeats), and events around them.
    for f in [
        about("systeme-automation/optin-funnel-step", marie),
        fixture("systeme-settings/sale-new"),
        tag(),
        fixture("systeme-settings/sale-new"),
        tag(),
        fixture("systeme-settings/sale-new"),
        tag(),
        fixture("systeme-settings/sale-canceled"),
        about("systeme-automation/tag-removed", marie),
    ] {
        deliver(&http, &running.webhook_url, &f).await;
    }
    let export = Api::of(&running).text("/api/export?format=ndjson").await;
    running.stop().await;
    let truth = derived(dir.path());
    assert_eq!(
        truth["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e[1] != 1 || !e[2].is_null())
            .count(),
        4,
        "two retries and two repeats: {truth}"
    );

    // Exports list oldest first; a file put together otherwise (several exports joined,
    // another tool's list) must import to the same store.
    let oldest_first: Vec<&str> = export.lines().collect();
    let received = |line: &str| serde_json::from_str::<Value>(line).unwrap()["received_at"].clone();
    assert!(
        received(oldest_first[0]).as_str() < received(oldest_first[8]).as_str(),
        "an export lists oldest first"
    );
    let newest_first: Vec<&str> = oldest_first.iter().rev().copied().collect();
    let mixed: Vec<&str> = [4, 0, 8, 2, 6, 1, 7, 3, 5]
        .iter()
        .map(|&i| oldest_first[i])
        .collect();
    for (order, lines) in [
        ("oldest first", oldest_first.clone()),
        ("newest first", newest_first),
        ("mixed", mixed),
    ] {
        let elsewhere = tempfile::tempdir().unwrap();
        let mut writer =
            db::open_writer(&db::database_path(elsewhere.path()), db::Synchronous::Full).unwrap();
        let report =
            support::import_and_index(&mut writer, lines.join("\n").as_bytes(), 1 << 20).unwrap();
        assert_eq!(report.imported, 9, "{order}");
        drop(writer);
        assert_eq!(derived(elsewhere.path()), truth, "imported {order}");
    }

    // Two copies of one body received in the same microsecond: the one with the smaller id
    // is the first, whichever is imported first.
    let mut copy: Value = serde_json::from_str(oldest_first[2]).unwrap();
    assert_eq!(
        copy["body"]["type"], "contact.tag.added",
        "an unsigned body"
    );
    copy["received_at"] = json!("2025-01-01T00:00:00.000000Z");
    let [first, second] = [
        "01940000-0000-7000-8000-00000000000a",
        "01940000-0000-7000-8000-00000000000b",
    ]
    .map(|id| {
        copy["id"] = json!(id);
        copy.to_string()
    });
    for (order, lines) in [
        ("first first", [&first, &second]),
        ("second first", [&second, &first]),
    ] {
        let elsewhere = tempfile::tempdir().unwrap();
        let mut writer =
            db::open_writer(&db::database_path(elsewhere.path()), db::Synchronous::Full).unwrap();
        let text = lines.map(String::as_str).join("\n");
        support::import_and_index(&mut writer, text.as_bytes(), 1 << 20).unwrap();
        drop(writer);
        assert_eq!(
            derived(elsewhere.path())["events"],
            json!([
                ["01940000-0000-7000-8000-00000000000a", 1, null],
                [
                    "01940000-0000-7000-8000-00000000000b",
                    1,
                    "01940000-0000-7000-8000-00000000000a"
                ]
            ]),
            "tied copies imported {order}"
        );
    }
}

/// The secret `fixtures/make_fixtures.py` signs the Settings-webhook fixtures with.
const TEST_SECRET: &str = "whsec-test-0123456789abcdef";

async fn set_secret(api: &Api, running: &hookscope_core::Running, secret: Option<&str>) {
    let endpoint = running.state.store.default_endpoint().unwrap();
    let answer = api
        .http
        .patch(format!("{}/api/endpoints/{}", api.base, endpoint.id))
        .bearer_auth(&api.token)
        .json(&json!({ "secret": secret }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "the secret is set");
}

/// A capture from `fixtures/captures/`, copied as found.
fn capture(name: &str) -> Fixture {
    let dir = support::fixtures_dir().join("captures");
    let body = std::fs::read(dir.join(format!("{name}.json"))).unwrap();
    let headers = std::fs::read_to_string(dir.join(format!("{name}.headers"))).unwrap();
    Fixture {
        name: format!("captures/{name}"),
        body,
        headers: hookscope_core::capture::headers_file::parse(&headers),
    }
}

/// A Settings fixture as another message (its own message id), body edited.
fn another(name: &str, n: u32, edit: impl FnOnce(&mut Value)) -> Fixture {
    let mut f = edited(fixture(name), edit);
    for (header, value) in &mut f.headers {
        if header.eq_ignore_ascii_case("x-webhook-message-id") {
            *value = format!("01a0e483-09fb-7e42-8b1e-5f6a7c2e{n:04}");
        }
    }
    f
}

fn event_of<'a>(events: &'a Value, id: &str) -> &'a Value {
    events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id)
        .unwrap_or_else(|| panic!("event {id} listed"))
}

#[tokio::test]
async fn automation_types_are_known_by_their_envelope_and_no_family_is_guessed() {
    let dir = tempfile::tempdir().unwrap();
    let running = start_server(dir.path()).await;
    let api = Api::of(&running);
    let http = reqwest::Client::new();
    let url = &running.webhook_url;
    let failed = deliver(
        &http,
        url,
        &fixture("systeme-automation/subscription-payment-failed"),
    )
    .await;
    let meeting = deliver(
        &http,
        url,
        &Fixture {
            name: "meeting".into(),
            body: br#"{"type":"contact.meeting.scheduled","data":{"contact":{"id":5,"email":"meet@example.com"},"meeting":{"name":"Discovery call"}},"created_at":"2026-11-05T03:00:00+00:00"}"#.to_vec(),
            headers: vec![("content-type".into(), "application/json".into())],
        },
    )
    .await;
    let plain = deliver(
        &http,
        url,
        &Fixture {
            name: "plain".into(),
            body: br#"{"type":"payment.sale.refunded","email":"x@example.com"}"#.to_vec(),
            headers: vec![("content-type".into(), "application/json".into())],
        },
    )
    .await;
    let events = api.json("/api/events?limit=50").await;
    let failed = event_of(&events, &failed);
    assert_eq!(failed["source"], "systeme_automation", "{failed}");
    assert_eq!(failed["family"], "subscription");
    assert_eq!(failed["label"], "Subscription payment failed");
    assert_eq!(
        failed["contact_id"], "445573087",
        "the contact's id, not the customer's"
    );
    assert!(
        failed.get("sale").is_none(),
        "a failed payment is no sale: {failed}"
    );
    let meeting = event_of(&events, &meeting);
    assert_eq!(
        (&meeting["source"], &meeting["family"], &meeting["label"]),
        (
            &json!("systeme_automation"),
            &json!("unknown"),
            &json!("Meeting scheduled")
        ),
        "an unknown automation type: its name as label, family unknown"
    );
    let plain = event_of(&events, &plain);
    assert_eq!(
        plain["family"], "unknown",
        "no family from the words 'sale' or 'refunded'"
    );
    let sales = api.json("/api/events?family=sale").await;
    assert_eq!(
        sales["events"],
        json!([]),
        "nothing here is a sale: {sales}"
    );
    let card = api.json("/api/contacts/marie.dupont%40example.fr").await;
    assert_eq!(card["card"]["purchases"], json!([]));
    assert_eq!(api.json("/api/funnels").await["funnels"], json!([]));
    running.stop().await;
}

#[tokio::test]
async fn a_discounted_sale_is_worth_what_was_paid_everywhere_and_form_fields_are_no_drift() {
    let dir = tempfile::tempdir().unwrap();
    let running = start_server(dir.path()).await;
    let api = Api::of(&running);
    let http = reqwest::Client::new();
    let url = &running.webhook_url;
    deliver(&http, url, &fixture("systeme-settings/sale-new")).await;
    let discounted = deliver(&http, url, &fixture("systeme-settings/sale-new-discounted")).await;
    // More orders whose forms ask for other fields: not a change of shape.
    for (n, fields) in [
        json!({"first_name": "A"}),
        json!({"first_name": "B", "city": "Lyon", "company_name": "X"}),
        json!([]),
    ]
    .into_iter()
    .enumerate()
    {
        deliver(
            &http,
            url,
            &another("systeme-settings/sale-new", 100 + n as u32, |b| {
                b["customer"]["fields"] = fields;
                b["order"]["id"] = json!(9000 + n);
            }),
        )
        .await;
    }
    let events = api.json("/api/events?type=SALE_NEW&limit=50").await;
    for event in events["events"].as_array().unwrap() {
        assert_eq!(
            event["drift"],
            Value::Null,
            "order form fields vary: {event}"
        );
    }
    let event = event_of(&events, &discounted);
    assert_eq!(
        event["summary"], "New sale: 27.00 EUR, Blog qui rapporte",
        "what was paid"
    );
    assert_eq!(
        event["sale"],
        json!({"order_id": "7771002", "offer_id": "19", "offer": "Blog qui rapporte",
               "amount_cents": 2700, "list_cents": 4700, "discount_cents": 2000,
               "ordered_at": "2026-11-27T10:05:00+00:00", "currency": "EUR",
               "step": {"funnel_id": "614600", "funnel": "Créer un blog",
                        "step_id": "2102900", "step": "Checkout – Blog qui rapporte"}}),
    );
    let card = api.json("/api/contacts/marie.dupont%40example.fr").await;
    let purchase = card["card"]["purchases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["order_id"] == "7771002")
        .unwrap()
        .clone();
    assert_eq!(purchase["amount_cents"], 2700);
    assert_eq!(
        purchase["at"], "2026-11-27T10:05:00.000000Z",
        "dated by its order"
    );
    let funnels = api.json("/api/funnels").await;
    assert_eq!(
        funnels["funnels"][0]["revenue"],
        json!([{"currency": "EUR", "amount_cents": 4700 * 4 + 2700}]),
        "the funnel counts what was paid: {funnels}"
    );
    let exported = api.text("/api/export?format=ndjson").await;
    let line: Value = exported
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["id"] == discounted.as_str())
        .unwrap();
    assert_eq!(line["sale"]["amount_cents"], 2700, "the export agrees");
    running.stop().await;
}

#[tokio::test]
async fn a_delivery_that_fails_verification_counts_for_nothing_until_its_secret_says_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let running = start_server(dir.path()).await;
    let api = Api::of(&running);
    let http = reqwest::Client::new();
    let url = &running.webhook_url;
    set_secret(&api, &running, Some(TEST_SECRET)).await;
    let genuine = deliver(&http, url, &fixture("systeme-settings/sale-new")).await;
    // Forged: another order and an opt-in, with a signature that does not match them.
    let forged_sale = deliver(
        &http,
        url,
        &another("systeme-settings/sale-new", 1, |b| {
            b["order"]["id"] = json!(666);
            b["order"]["totalPrice"] = json!(999_900);
        }),
    )
    .await;
    deliver(
        &http,
        url,
        &another("systeme-settings/contact-opt-in", 2, |b| {
            b["contact"]["email"] = json!("eve@example.com");
        }),
    )
    .await;
    let events = api.json("/api/events?limit=50").await;
    assert_eq!(event_of(&events, &genuine)["signature"], "valid");
    assert_eq!(
        event_of(&events, &forged_sale)["signature"],
        "invalid",
        "stored and shown, flagged"
    );

    let counted = |card: &Value| {
        card["card"]["purchases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["amount_cents"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    let card = api.json("/api/contacts/marie.dupont%40example.fr").await;
    assert_eq!(counted(&card), vec![4700], "the forged sale adds nothing");
    assert_eq!(card["not_counted"], 1);
    assert_eq!(card["contact"]["events"], 1, "nor to her counts");
    let funnels = api.json("/api/funnels").await;
    assert_eq!(funnels["not_counted"], 2, "{funnels}");
    assert_eq!(
        funnels["funnels"][0]["revenue"],
        json!([{"currency": "EUR", "amount_cents": 4700}])
    );
    assert_eq!(funnels["funnels"][0]["optins"], 0);
    let eve = api
        .get("/api/contacts/eve%40example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        eve.status(),
        404,
        "a contact only forged deliveries name is no contact"
    );

    // A wrong secret: nothing is trusted. The right one again: as before.
    set_secret(&api, &running, Some("not the secret")).await;
    let gone = api
        .get("/api/contacts/marie.dupont%40example.fr")
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404, "nothing of hers is trusted");
    set_secret(&api, &running, None).await;
    let card = api.json("/api/contacts/marie.dupont%40example.fr").await;
    assert_eq!(
        counted(&card),
        vec![4700, 999_900],
        "with no secret nothing fails verification"
    );
    set_secret(&api, &running, Some(TEST_SECRET)).await;
    let live = every_answer(&api).await;
    let card = api.json("/api/contacts/marie.dupont%40example.fr").await;
    assert_eq!(counted(&card), vec![4700]);
    running.stop().await;
    // `hookscope reindex` gives the same answers as live derivation.
    let copy = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("hookscope.db")
        {
            std::fs::copy(&path, copy.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    {
        let mut conn =
            db::open_writer(&db::database_path(copy.path()), db::Synchronous::Full).unwrap();
        hookscope_core::store::indexer::reset(&mut conn).unwrap();
        hookscope_core::store::indexer::run_to_end(&mut conn, 1 << 20, |_, _| {}).unwrap();
    }
    let running = start_server(copy.path()).await;
    let reindexed = every_answer(&Api::of(&running)).await;
    running.stop().await;
    support::assert_same_answers(&reindexed, &live, "a reindex derives what was derived live");
}

#[tokio::test]
async fn the_cards_tags_follow_the_contacts_own_list_and_repeats_count_once() {
    let dir = tempfile::tempdir().unwrap();
    let running = start_server(dir.path()).await;
    let api = Api::of(&running);
    let http = reqwest::Client::new();
    let url = &running.webhook_url;
    let marie = "marie.dupont@example.fr";
    // Hookscope started after "Early" was added: the tag-added event lists it.
    deliver(
        &http,
        url,
        &another("systeme-settings/contact-tag-added", 1, |b| {
            b["contact"]["tags"] =
                json!([{"id": 1, "name": "Early"}, {"id": 141002, "name": "Client"}]);
        }),
    )
    .await;
    let card = api.json("/api/contacts/marie.dupont%40example.fr").await;
    assert_eq!(
        card["card"]["tags"],
        json!(["Early", "Client"]),
        "her own list"
    );
    let removed = edited(about("systeme-automation/tag-removed", marie), |b| {
        b["data"]["tag"]["name"] = json!("Early");
    });
    deliver(&http, url, &removed).await;
    // The same bytes again shortly after: a probable repeat, not another event.
    deliver(&http, url, &removed).await;
    let card = api.json("/api/contacts/marie.dupont%40example.fr").await;
    assert_eq!(
        card["card"]["tags"],
        json!(["Client"]),
        "later removals apply in order"
    );
    assert_eq!(card["contact"]["events"], 2, "the repeat counts once");
    // An opt-in is dated by when systeme.io says it happened.
    deliver(
        &http,
        url,
        &another("systeme-settings/contact-opt-in", 3, |_| {}),
    )
    .await;
    let card = api.json("/api/contacts/marie.dupont%40example.fr").await;
    assert_eq!(
        card["card"]["optins"][0]["at"], "2026-09-27T20:19:27.000000Z",
        "{card}"
    );
    running.stop().await;
}

#[tokio::test]
async fn real_captures_and_integration_samples_mean_what_their_sources_say() {
    let dir = tempfile::tempdir().unwrap();
    let running = start_server(dir.path()).await;
    let api = Api::of(&running);
    let http = reqwest::Client::new();
    let url = &running.webhook_url;
    let sale = deliver(&http, url, &capture("pulsacity-sale-new")).await;
    let enrolled = deliver(&http, url, &capture("pulsacity-course-enrolled")).await;
    let sample = deliver(&http, url, &capture("activepieces-sale-new-coupon")).await;
    let events = api.json("/api/events?limit=50").await;
    let sale = event_of(&events, &sale);
    assert_eq!(
        sale["summary"], "New sale: 1.00 EUR, Produit physique test PULSACITY",
        "1 € cash on delivery"
    );
    assert_eq!(sale["contact_id"], "445573087");
    assert_eq!(sale["occurred_at"], "2026-09-27T20:16:27+00:00");
    let enrolled = event_of(&events, &enrolled);
    assert_eq!(
        enrolled["summary"],
        "Course enrolment: Formation test PULSACITY (full access)"
    );
    assert_eq!(enrolled["family"], "course");
    let sample = event_of(&events, &sample);
    assert_eq!(
        sample["sale"]["amount_cents"], 1234,
        "no order total: the plan's amount"
    );
    // The capture's body was masked after signing: with its secret it fails verification.
    set_secret(&api, &running, Some("pulsacity-capture-test")).await;
    let events = api.json("/api/events?signature=invalid").await;
    assert_eq!(
        events["events"].as_array().unwrap().len(),
        1,
        "the masked capture"
    );
    running.stop().await;
}
