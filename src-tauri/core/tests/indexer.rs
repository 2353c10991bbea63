//! Derived state is rebuildable: a store built from every fixture, retries and repeats
//! among them, plus an export of it imported out of order, answers every API read the
//! same before and after `reindex` empties and derives it all again. And deliveries are
//! acknowledged as received: the indexer derives them afterwards, in order, and the
//! status says how far it has come.

use crate::support;

use std::time::Duration;

use hookscope_core::store::db::{self, Synchronous};
use hookscope_core::store::indexer;
use serde_json::{Value, json};
use support::{Api, all_fixtures, deliver, every_answer, fixture, start_server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_is_the_same_after_a_reindex() {
    let dir = tempfile::tempdir().unwrap();
    let running = start_server(dir.path()).await;
    let api = Api::of(&running);
    let http = reqwest::Client::new();
    for f in all_fixtures() {
        deliver(&http, &running.webhook_url, &f).await;
    }
    // A retry of a signed sale and a repeated automation body.
    for name in ["systeme-settings/sale-new", "systeme-automation/tag-added"] {
        deliver(&http, &running.webhook_url, &fixture(name)).await;
    }
    // The store's own export, imported into a second store oldest, newest and mixed
    // first, is imported back here with events older than what it holds.
    let export = api.text("/api/export?format=ndjson").await;
    let mut lines: Vec<String> = export
        .lines()
        .map(|line| {
            let mut event: Value = serde_json::from_str(line).unwrap();
            let id = event["id"].as_str().unwrap().to_string();
            event["id"] = json!(format!("{}-old", &id[..id.len() - 4]));
            event["received_at"] = json!("2020-01-01T00:00:00Z");
            event.to_string()
        })
        .collect();
    lines.reverse();
    // Through the running Hookscope, the store's one writer (what `hookscope import` does
    // beside it).
    let report: Value = api
        .http
        .post(format!("{}/api/import", api.base))
        .bearer_auth(&api.token)
        .body(lines.join("\n"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["imported"], lines.len(), "{report}");
    let before = every_answer(&api).await;
    assert_eq!(
        before["status"]["indexing"]["behind"], 0,
        "everything was indexed before the comparison"
    );
    let held = before["events"]["events"].as_array().unwrap().len();
    assert!(
        held > 40,
        "the store holds the fixtures, retries, repeats and the import: {held}"
    );
    running.stop().await;

    let mut conn = db::open_writer(&db::database_path(dir.path()), Synchronous::Full).unwrap();
    indexer::reset(&mut conn).unwrap();
    let emptied: i64 = conn
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(emptied, 0, "the derived state is gone");
    let derived = indexer::run_to_end(&mut conn, 1 << 20, |_, _| {}).unwrap();
    assert_eq!(
        derived as usize,
        2 * lines.len(),
        "every delivery derived again"
    );
    drop(conn);

    let running = start_server(dir.path()).await;
    let after = every_answer(&Api::of(&running)).await;
    for (part, value) in before.as_object().unwrap() {
        assert_eq!(&after[part], value, "{part} is the same after a reindex");
    }
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_is_indexed_in_the_background_and_the_status_says_how_far() {
    let dir = tempfile::tempdir().unwrap();
    {
        // Deliveries stored as received (a crash before the indexer got to them, or an
        // upgrade): nothing derived yet.
        let mut conn =
            db::open_writer(&db::database_path(dir.path()), Synchronous::Normal).unwrap();
        hookscope_core::store::endpoints::ensure_default(&conn).unwrap();
        let tx = conn.transaction().unwrap();
        let sale = fixture("systeme-automation/sale-completed");
        for i in 0..3_000 {
            let raw = hookscope_core::capture::RawDelivery {
                id: format!("01900000-0000-7000-8000-{i:012}"),
                received_at: 1_764_000_000_000_000 + i,
                endpoint_id: "ep_x".into(),
                endpoint_name: "X".into(),
                method: "POST".into(),
                path: "/h/x".into(),
                query: None,
                headers: sale.headers.clone(),
                remote_addr: None,
                client_ip: None,
                via_tunnel: false,
                // Each its own buyer and order: the same bytes again would be a repeat.
                body: bytes::Bytes::from(
                    String::from_utf8(sale.body.clone())
                        .unwrap()
                        .replace("612661", &format!("7{i:05}"))
                        .replace("test-1922@systeme.io", &format!("buyer-{i}@systeme.io")),
                ),
            };
            hookscope_core::store::deliveries::insert(&tx, &raw).unwrap();
        }
        tx.commit().unwrap();
    }
    let running = start_server(dir.path()).await;
    let api = Api::of(&running);
    // Counted from the start, indexed or not.
    let status = api.json("/api/status").await;
    assert_eq!(status["events"], 3_000, "{status}");
    let mut progress = running.state.store.writer.watch_indexed();
    tokio::time::timeout(
        Duration::from_secs(60),
        progress.wait_for(|p| p.behind == 0 && p.through > 0),
    )
    .await
    .expect("the backlog is indexed")
    .unwrap();
    let status = api.json("/api/status").await;
    assert_eq!(status["indexing"]["behind"], 0);
    assert_eq!(
        status["contacts"], 3_000,
        "every delivery derived: {status}"
    );
    let contact = api.json("/api/contacts/buyer-2999@systeme.io").await;
    assert_eq!(contact["card"]["purchases"][0]["amount_cents"], 583);
    running.stop().await;
}
