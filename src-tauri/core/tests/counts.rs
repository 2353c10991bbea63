//! The window's counters (`/api/status` events and contacts) are kept as rows come and
//! go (events by the indexer and erasure, contacts by triggers), not counted at each
//! call: after deliveries, an import, a forget, a retention run and a reindex they are
//! exactly what the tables hold.

use crate::support;

use std::path::Path;
use std::time::Duration;

use hookscope_core::store::db::{self, Synchronous};
use hookscope_core::store::indexer;
use serde_json::{Value, json};
use support::{Api, all_fixtures, start_server};

/// What the tables hold, counted.
fn counted(dir: &Path) -> (i64, i64) {
    let conn = db::open_reader(&db::database_path(dir)).unwrap();
    let count = |table: &str| {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    };
    (count("events"), count("contacts"))
}

/// What the status says once nothing waits to be indexed (10 s at most).
async fn status_settled(api: &Api) -> (i64, i64) {
    for _ in 0..100 {
        let status = api.json("/api/status").await;
        if status["indexing"]["behind"] == 0 {
            return (
                status["events"].as_i64().unwrap(),
                status["contacts"].as_i64().unwrap(),
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("indexing did not catch up within 10 s");
}

async fn send(api: &Api, method: reqwest::Method, path: &str, body: Value) -> Value {
    let answer = api
        .http
        .request(method, format!("{}{path}", api.base))
        .bearer_auth(&api.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{path}: {}", answer.status());
    answer.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kept_counts_are_what_the_tables_hold_after_every_change() {
    let dir = tempfile::tempdir().unwrap();
    // History: ten deliveries from 1 to 10 days ago, one contact each, imported before
    // the server starts (it indexes them).
    let now = hookscope_core::timefmt::now_micros();
    let day = 24 * 3_600_000_000i64;
    let lines: Vec<String> = (1..=10)
        .map(|d| {
            json!({
                "id": format!("01900000-0000-7000-8000-{d:012}"),
                "received_at": hookscope_core::timefmt::format_micros(now - d * day - day / 24),
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
    drop(writer);

    let running = start_server(dir.path()).await;
    let api = Api::of(&running);
    let http = reqwest::Client::new();
    assert_eq!(status_settled(&api).await, (10, 10));
    assert_eq!(counted(dir.path()), (10, 10));
    for fixture in all_fixtures() {
        support::deliver(&http, &running.webhook_url, &fixture).await;
    }
    let live = status_settled(&api).await;
    assert!(live.0 > 10 && live.1 > 10, "{live:?}");
    assert_eq!(live, counted(dir.path()), "after deliveries");

    send(
        &api,
        reqwest::Method::DELETE,
        "/api/contacts/d3%40example.com",
        json!({}),
    )
    .await;
    let forgot = status_settled(&api).await;
    assert_eq!(
        (forgot.0, forgot.1),
        (live.0 - 1, live.1 - 1),
        "one delivery, one contact gone"
    );
    assert_eq!(forgot, counted(dir.path()), "after a forget");

    // Retention of 5 days prunes the 6 deliveries (and their contacts) from 5 to 10 days
    // ago (d3 is gone already).
    send(
        &api,
        reqwest::Method::PUT,
        "/api/retention",
        json!({"days": 5}),
    )
    .await;
    let mut pruned = forgot;
    for _ in 0..100 {
        pruned = status_settled(&api).await;
        if pruned.0 == forgot.0 - 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(pruned, (forgot.0 - 6, forgot.1 - 6), "after retention");
    assert_eq!(pruned, counted(dir.path()), "after retention, counted");
    running.stop().await;

    // A reindex empties every derived table and derives it again.
    let mut conn = db::open_writer(&db::database_path(dir.path()), Synchronous::Full).unwrap();
    indexer::reset(&mut conn).unwrap();
    let kept = |conn: &rusqlite::Connection| -> (i64, i64) {
        let n = |name: &str| {
            conn.query_row("SELECT n FROM row_counts WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .unwrap()
        };
        (n("events"), n("contacts"))
    };
    assert_eq!(kept(&conn), (0, 0), "emptied");
    indexer::run_to_end(&mut conn, 1 << 20, |_, _| {}).unwrap();
    assert_eq!(kept(&conn), pruned, "derived again");
    let triggers = |schema: &str| -> i64 {
        conn.query_row(
            &format!("SELECT count(*) FROM {schema}.sqlite_master WHERE type = 'trigger'"),
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(
        triggers("derived"),
        2,
        "the contacts' counting triggers are back after the reset"
    );
    assert_eq!(
        triggers("main"),
        0,
        "in the derived file, beside their table"
    );
    drop(conn);
    assert_eq!(counted(dir.path()), pruned);
}
