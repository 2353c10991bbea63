//! Derived state is rebuildable: a store built from every fixture, retries and repeats
//! among them, plus an export of it imported out of order, answers every API read the
//! same before and after `reindex` empties and derives it all again. And deliveries are
//! acknowledged as received: the indexer derives them afterwards, in order, and the
//! status says how far it has come.

use crate::support;

use std::time::Duration;

use hookscope_core::capture::card::Card;
use hookscope_core::store::db::{self, Synchronous};
use hookscope_core::store::{cards, indexer};
use rusqlite::OptionalExtension;
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
        store_sales(&mut conn, 3_000);
    }
    let running = start_server(dir.path()).await;
    let api = Api::of(&running);
    // Counted from the start, indexed or not.
    let status = api.json("/api/status").await;
    assert_eq!(status["events"], 3_000, "{status}");
    backlog_indexed(&running).await;
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

/// Deliveries that never stop do not starve the index. While eight senders keep the
/// writer busy, a backlog imported meanwhile is indexed before they stop, and they are
/// acknowledged all along. (With no index slices under load at all, this test still
/// passes, about ten times slower, on the quiet gaps a debug build's stream leaves: it
/// guards against an index that waits for ever, not the share it gets.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_never_stops_does_not_starve_the_index() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    let dir = tempfile::tempdir().unwrap();
    let running = start_server(dir.path()).await;
    let streaming = Arc::new(AtomicBool::new(true));
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let http = reqwest::Client::new();
    let senders: Vec<_> = (0..8)
        .map(|_| {
            let (streaming, acknowledged) = (streaming.clone(), acknowledged.clone());
            let (http, url) = (http.clone(), running.webhook_url.clone());
            let tag = fixture("systeme-automation/tag-added");
            tokio::spawn(async move {
                while streaming.load(Ordering::Relaxed) {
                    deliver(&http, &url, &tag).await;
                    acknowledged.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let mut committed = running.state.store.writer.watch_committed();
    tokio::time::timeout(
        Duration::from_secs(30),
        committed.wait_for(|seq| *seq >= 50),
    )
    .await
    .expect("the stream is flowing")
    .unwrap();

    let sale = fixture("systeme-automation/sale-completed");
    let backlog: Vec<_> = (0..400)
        .map(|i| {
            let body = String::from_utf8(sale.body.clone())
                .unwrap()
                .replace("612661", &format!("8{i:05}"))
                .replace("test-1922@systeme.io", &format!("stream-{i}@systeme.io"));
            stored_sale(i, &sale, body)
        })
        .collect();
    let saved = running
        .state
        .store
        .writer
        .store_imported(backlog)
        .await
        .unwrap();
    assert_eq!(saved.imported, 400);
    let backlog_ends = *running.state.store.writer.watch_committed().borrow();
    let before = acknowledged.load(Ordering::Relaxed);

    let mut progress = running.state.store.writer.watch_indexed();
    tokio::time::timeout(
        Duration::from_secs(60),
        progress.wait_for(|p| p.through >= backlog_ends),
    )
    .await
    .expect("the backlog is indexed while deliveries keep arriving")
    .unwrap();
    let during = acknowledged.load(Ordering::Relaxed) - before;
    streaming.store(false, Ordering::Relaxed);
    for sender in senders {
        tokio::time::timeout(Duration::from_secs(30), sender)
            .await
            .expect("each sender ends with its delivery in flight")
            .unwrap();
    }
    assert!(
        during >= 50,
        "deliveries kept being acknowledged while the index worked: {during}"
    );

    backlog_indexed(&running).await;
    let api = Api::of(&running);
    let contact = api.json("/api/contacts/stream-399@systeme.io").await;
    assert_eq!(contact["card"]["purchases"][0]["amount_cents"], 583);
    running.stop().await;
}

/// A contact's search row follows its last name (the full-text writes are held to the end
/// of each batch), within one batch and from one batch to a later one, in the running
/// server's indexer and in a reindex, which gives the same answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renamed_contacts_are_found_by_their_last_name_only_across_batches() {
    let dir = tempfile::tempdir().unwrap();
    let sale = fixture("systeme-automation/sale-completed");
    let sale_text = String::from_utf8(sale.body.clone()).unwrap();
    {
        let mut conn =
            db::open_writer(&db::database_path(dir.path()), Synchronous::Normal).unwrap();
        hookscope_core::store::endpoints::ensure_default(&conn).unwrap();
        let tx = conn.transaction().unwrap();
        // 4,200 deliveries, three batches: contacts 0..2000 twice in a row (a rename within
        // a batch), then contacts 0..200 again from the third batch (a rename across).
        for i in 0..4_200 {
            let contact = if i < 4_000 { i / 2 } else { i - 4_000 };
            let raw = stored_sale(
                i,
                &sale,
                sale_text
                    .replace("612661", &format!("7{i:05}"))
                    .replace(
                        "\"first_name\":\"test-1922\"",
                        &format!("\"first_name\":\"Zed{i}q\""),
                    )
                    .replace(
                        "test-1922@systeme.io",
                        &format!("buyer-{contact}@systeme.io"),
                    ),
            );
            hookscope_core::store::deliveries::insert(&tx, &raw).unwrap();
        }
        tx.commit().unwrap();
    }
    async fn found(api: &Api, q: &str) -> Vec<String> {
        api.json(&format!("/api/contacts?q={q}&limit=50")).await["contacts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["email"].as_str().unwrap().to_string())
            .collect()
    }
    async fn answers(api: &Api) -> Value {
        let mut searches = serde_json::Map::new();
        for q in [
            "zed4199q", "zed399q", "zed398q", "zed3999q", "zed3998q", "zed0q",
        ] {
            searches.insert(q.into(), json!(found(api, q).await));
        }
        json!({
            "searches": searches,
            "contacts": api.json("/api/contacts?limit=500").await,
            "events": api.json("/api/events?limit=500").await,
            "text": api.json("/api/events?q=zed4123q&limit=50").await,
        })
    }

    let running = start_server(dir.path()).await;
    let api = Api::of(&running);
    backlog_indexed(&running).await;
    assert_eq!(api.json("/api/status").await["contacts"], 2_000);
    // Renamed across batches: found by the last name, not the earlier two.
    assert_eq!(found(&api, "zed4199q").await, ["buyer-199@systeme.io"]);
    assert!(found(&api, "zed399q").await.is_empty());
    assert!(found(&api, "zed398q").await.is_empty());
    // Renamed within a batch.
    assert_eq!(found(&api, "zed3999q").await, ["buyer-1999@systeme.io"]);
    assert!(found(&api, "zed3998q").await.is_empty());
    // Every event is in the full-text index.
    let texts = api.json("/api/events?q=zed4123q&limit=50").await;
    assert_eq!(texts["events"].as_array().unwrap().len(), 1, "{texts}");
    let before = answers(&api).await;
    running.stop().await;

    let mut conn = db::open_writer(&db::database_path(dir.path()), Synchronous::Full).unwrap();
    indexer::reset(&mut conn).unwrap();
    let mut reported = Vec::new();
    let derived =
        indexer::run_to_end(&mut conn, 1 << 20, |done, left| reported.push((done, left))).unwrap();
    assert_eq!(derived, 4_200);
    assert_eq!(reported, [(2_000, 2_200), (4_000, 200), (4_200, 0)]);
    assert_eq!(indexer::position(&conn).unwrap(), 4_200);
    drop(conn);
    let running = start_server(dir.path()).await;
    support::assert_same_answers(
        &answers(&Api::of(&running)).await,
        &before,
        "after a reindex",
    );
    running.stop().await;
}

/// An empty store in a temporary folder (kept while the first value lives), its path and a
/// writing connection, with its default endpoint.
fn new_store() -> (tempfile::TempDir, std::path::PathBuf, rusqlite::Connection) {
    let dir = tempfile::tempdir().unwrap();
    let path = db::database_path(dir.path());
    let conn = db::open_writer(&path, Synchronous::Normal).unwrap();
    hookscope_core::store::endpoints::ensure_default(&conn).unwrap();
    (dir, path, conn)
}

/// Stores `count` sales as received (nothing derived), each its own buyer and order: the
/// same bytes again would be a repeat.
pub(crate) fn store_sales(conn: &mut rusqlite::Connection, count: i64) {
    let sale = fixture("systeme-automation/sale-completed");
    let body = String::from_utf8(sale.body.clone()).unwrap();
    let tx = conn.transaction().unwrap();
    for i in 0..count {
        let raw = stored_sale(
            i,
            &sale,
            body.replace("612661", &format!("7{i:05}"))
                .replace("test-1922@systeme.io", &format!("buyer-{i}@systeme.io")),
        );
        hookscope_core::store::deliveries::insert(&tx, &raw).unwrap();
    }
    tx.commit().unwrap();
}

/// The `i`th delivery of a backlog, stored as received with `body` and `sale`'s headers.
fn stored_sale(
    i: i64,
    sale: &support::Fixture,
    body: String,
) -> hookscope_core::capture::RawDelivery {
    hookscope_core::capture::RawDelivery {
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
        body: bytes::Bytes::from(body),
    }
}

/// Waits (a minute at most) until the running server's indexer has caught up.
async fn backlog_indexed(running: &hookscope_core::Running) {
    let mut progress = running.state.store.writer.watch_indexed();
    tokio::time::timeout(
        Duration::from_secs(60),
        progress.wait_for(|p| p.behind == 0 && p.through > 0),
    )
    .await
    .expect("the backlog is indexed")
    .unwrap();
}

/// A contact's card is updated in memory across a whole batch and written once at its end:
/// what is stored must still be exactly the fold of its events, whether the batch starts
/// from a stored card or from none, and when a delivery older than the card's arrives in
/// the middle of the batch (an import) and makes the card stale.
#[test]
fn a_card_kept_across_a_batch_equals_a_rebuild() {
    let (_dir, path, mut conn) = new_store();
    let tag = fixture("systeme-automation/tag-added");
    let template = String::from_utf8(tag.body.clone()).unwrap();
    let delivery = |i: i64, at: i64, email: &str, name: &str| {
        let body = template
            .replace("temochkaykvlv+lksdllfnsnkfdls@gmail.com", email)
            .replace("MyAwesomeTag", name)
            // Each body its own: identical unsigned bodies would be repeats.
            .replace("141002", &i.to_string());
        let mut raw = stored_sale(i, &tag, body);
        raw.received_at = at;
        raw
    };
    let store = |conn: &mut rusqlite::Connection, raws: Vec<_>| {
        let tx = conn.transaction().unwrap();
        for raw in raws {
            hookscope_core::store::deliveries::insert(&tx, &raw).unwrap();
        }
        tx.commit().unwrap();
    };
    let anne = "anne@example.com";
    let bob = "bob@example.com";
    let base = 1_764_000_000_000_000;
    let stored_card = |conn: &rusqlite::Connection, key: &str| -> Option<Card> {
        conn.query_row(
            "SELECT card FROM contact_cards WHERE contact_key = ?1",
            [key],
            |r| r.get::<_, String>(0),
        )
        .optional()
        .unwrap()
        .map(|card| serde_json::from_str(&card).unwrap())
    };

    // First batch: 300 tags for Anne, interleaved with Bob's, from no stored card.
    store(
        &mut conn,
        (0..600)
            .map(|i| {
                let (who, n) = if i % 2 == 0 {
                    (anne, i / 2)
                } else {
                    (bob, i / 2)
                };
                delivery(i, base + i * 1_000, who, &format!("tag {n}"))
            })
            .collect(),
    );
    assert_eq!(
        indexer::run_to_end(&mut conn, 1 << 20, |_, _| {}).unwrap(),
        600
    );
    // The log was copied into the database on a thread of its own while deriving; the
    // connection checkpoints by itself again afterwards.
    let autocheckpoint: i64 = conn
        .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
        .unwrap();
    assert_eq!(autocheckpoint, 1000, "SQLite's default is given back");
    let wal = std::fs::metadata(path.with_extension("db-wal")).map_or(0, |m| m.len());
    assert_eq!(wal, 0, "the log was copied in and emptied at the end");
    let anne_card = stored_card(&conn, anne).expect("Anne's card is stored");
    assert_eq!(anne_card.tags.len(), 300);
    assert_eq!(anne_card.tags[299], "tag 299");
    assert_eq!(anne_card, cards::rebuild(&conn, anne).unwrap().0);
    assert_eq!(
        stored_card(&conn, bob).unwrap(),
        cards::rebuild(&conn, bob).unwrap().0
    );

    // Second batch, from the stored cards: Anne gets new tags, then one imported from
    // before all of them (stale from there), then newer ones again; Bob only new ones.
    let mut second: Vec<_> = (600..700)
        .map(|i| delivery(i, base + i * 1_000, anne, &format!("tag {i}")))
        .collect();
    second.push(delivery(700, base - 5_000, anne, "imported early"));
    second.extend((701..750).map(|i| delivery(i, base + i * 1_000, anne, &format!("tag {i}"))));
    second.extend((750..800).map(|i| delivery(i, base + i * 1_000, bob, &format!("tag {i}"))));
    store(&mut conn, second);
    assert_eq!(
        indexer::run_to_end(&mut conn, 1 << 20, |_, _| {}).unwrap(),
        200
    );
    let rebuilt = cards::rebuild(&conn, anne).unwrap().0;
    assert_eq!(rebuilt.tags.len(), 300 + 100 + 1 + 49);
    assert_eq!(
        rebuilt.tags[0], "imported early",
        "the import takes its place first"
    );
    assert_eq!(
        stored_card(&conn, anne).as_ref().unwrap_or(&rebuilt),
        &rebuilt,
        "a stored card is the fold of the events"
    );
    assert_eq!(cards::current(&conn, anne).unwrap(), rebuilt);
    let bob_card = stored_card(&conn, bob).expect("Bob's card is stored");
    assert_eq!(bob_card.tags.len(), 350);
    assert_eq!(bob_card, cards::rebuild(&conn, bob).unwrap().0);
}

/// `hookscope reindex` reads batches ahead of the one it derives. If the stored position
/// moves meanwhile (a mistake: another writer on the store), the batches read ahead are
/// stale: it goes on from the new position instead of dropping them all and stopping with
/// deliveries left underived.
#[test]
fn a_position_moved_during_a_reindex_is_followed_to_the_end() {
    let (_dir, path, mut conn) = new_store();
    // More than two batches of the indexer's.
    store_sales(&mut conn, 5_000);
    let other = db::open_second_writer(&path, Synchronous::Normal).unwrap();
    let mut moved = false;
    indexer::run_to_end(&mut conn, 1 << 20, |_, _| {
        // After the first batch, someone else claims the deliveries up to seq 3,000.
        if !std::mem::replace(&mut moved, true) {
            other
                .execute(
                    "UPDATE settings SET value = '3000' WHERE key = 'index.through'",
                    [],
                )
                .unwrap();
        }
    })
    .unwrap();
    assert_eq!(
        indexer::position(&conn).unwrap(),
        5_000,
        "derived to the end"
    );
    let derived: i64 = conn
        .query_row("SELECT count(*) FROM events WHERE seq > 3000", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(
        derived, 2_000,
        "everything after the moved position was derived"
    );
}

/// A derivation that runs for seconds rewinds the derived file's log as it goes: a writer
/// committing batch after batch never finds the log all copied, and without the rewind the
/// log held every page written (gigabytes for a million deliveries).
#[test]
fn a_long_derivation_keeps_its_log_short() {
    let (_dir, path, mut conn) = new_store();
    store_sales(&mut conn, 16_000);
    let log = db::derived_path(&path).with_extension("db-wal");
    let started = std::time::Instant::now();
    let mut largest_log = 0;
    let derived = indexer::run_to_end(&mut conn, 1 << 20, |_, _| {
        largest_log = largest_log.max(std::fs::metadata(&log).map_or(0, |m| m.len()));
    })
    .unwrap();
    let took = started.elapsed();
    assert_eq!(derived, 16_000);
    let derived_file = std::fs::metadata(db::derived_path(&path)).unwrap().len();
    eprintln!("log {largest_log} bytes at most, derived file {derived_file} bytes, in {took:?}");
    // Without the rewind the log holds every page written at least once, so it outgrows
    // the file (49.5 MB against 38.4 MB here); rewound every second, it held 14 MB.
    assert!(
        took >= Duration::from_secs(3),
        "long enough to need rewinding: {took:?}"
    );
    assert!(
        largest_log < derived_file,
        "log {largest_log} bytes at most, derived file {derived_file} bytes, in {took:?}"
    );
}

/// Applies `batch` as a server does, reading the deliveries' file on `apart`, or as the
/// command line does, in the derivation's transaction.
fn apply_reading(
    conn: &mut rusqlite::Connection,
    apart: Option<&rusqlite::Connection>,
    batch: indexer::IndexBatch,
) -> indexer::Applied {
    let reads = match apart {
        Some(main) => indexer::MainReads::Apart(main),
        None => indexer::MainReads::InTransaction,
    };
    let shapes = &mut hookscope_core::store::shapes::ShapeLearner::default();
    indexer::apply(conn, reads, shapes, batch, indexer::Metas::Made).unwrap()
}

/// A batch read before an erasure and applied after it derives nothing from what the
/// erasure took: the erasure count moved, so each delivery is looked up again; in the
/// derivation's transaction (the command line) and apart from it (a server).
#[test]
fn a_delivery_erased_after_its_batch_was_read_is_not_derived() {
    for apart in [false, true] {
        derive_after_an_erasure(apart);
    }
}

fn derive_after_an_erasure(apart: bool) {
    use hookscope_core::capture::mentions::Address;
    use hookscope_core::store::erasure;
    const LIMIT: usize = 1 << 20;
    let (_dir, path, mut conn) = new_store();
    store_sales(&mut conn, 6);
    // Open before the erasure, as a server's is.
    let main_reads = db::open_reader(&path).unwrap();
    let batch = indexer::read(&conn, 0, LIMIT).unwrap().unwrap();
    assert_eq!(batch.deliveries.len(), 6);
    let found =
        erasure::find(&conn, &Address::parse("buyer-4@systeme.io").unwrap(), LIMIT).unwrap();
    let report = erasure::forget(&mut conn, &found, LIMIT).unwrap();
    assert_eq!(report.deliveries, 1, "{report:?}");
    let applied = apply_reading(&mut conn, apart.then_some(&main_reads), batch);
    assert_eq!(applied.through, 6);
    assert_eq!(applied.metas.len(), 5, "apart: {apart}");
    let (events, mentioning): (i64, i64) = conn
        .query_row(
            "SELECT count(*), count(*) FILTER (WHERE contact_key = 'buyer-4@systeme.io') FROM events",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((events, mentioning), (5, 0), "apart: {apart}");
}

/// While a server derives a batch (the deliveries' file read apart from the derivation's
/// transaction), the writer's new commits can all be copied out of the log, so the writer
/// can rewind it. Read in the derivation's own transaction, as the command line does, the
/// batch holds a snapshot and they cannot: the second half shows what the first measures.
#[test]
fn a_server_batch_holds_no_snapshot_of_the_deliveries() {
    // A try may meet a read of the secrets or the forwards, or come before the batch's
    // first read or after its commit: the two ways differ by far more.
    let (tries, all_copied) = checkpoints_during_a_batch(true);
    assert!(
        all_copied * 4 >= tries * 3,
        "{all_copied} of {tries} copied all"
    );
    let (tries, all_copied) = checkpoints_during_a_batch(false);
    assert!(all_copied * 4 < tries, "{all_copied} of {tries} copied all");
}

/// Derives a batch of 2,000 sales while the writer commits and checkpoints beside it every
/// 20 ms; how many checkpoints ran while the batch was derived, and how many of them copied
/// the whole log.
fn checkpoints_during_a_batch(apart: bool) -> (usize, usize) {
    use std::sync::atomic::{AtomicBool, Ordering};
    const LIMIT: usize = 1 << 20;
    let (_dir, path, mut writer) = new_store();
    store_sales(&mut writer, 2_000);
    writer
        .execute_batch("CREATE TABLE main.beside (n INTEGER)")
        .unwrap();
    let mut deriving_conn = db::open_indexer(&path).unwrap();
    let main_reads = db::open_reader(&path).unwrap();
    let batch = indexer::read(&deriving_conn, 0, LIMIT).unwrap().unwrap();
    assert_eq!(batch.deliveries.len(), 2_000);
    let deriving = &AtomicBool::new(true);
    std::thread::scope(|scope| {
        let beside = scope.spawn(move || {
            let (mut tries, mut all_copied) = (0, 0);
            std::thread::sleep(Duration::from_millis(50));
            while deriving.load(Ordering::SeqCst) {
                writer
                    .execute("INSERT INTO main.beside VALUES (1)", [])
                    .unwrap();
                let (frames, copied): (i64, i64) = writer
                    .query_row("PRAGMA main.wal_checkpoint(PASSIVE)", [], |r| {
                        Ok((r.get(1)?, r.get(2)?))
                    })
                    .unwrap();
                // Counted only if the batch was still being derived after it.
                if deriving.load(Ordering::SeqCst) {
                    tries += 1;
                    all_copied += usize::from(frames > 0 && copied == frames);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            (tries, all_copied)
        });
        let applied = apply_reading(&mut deriving_conn, apart.then_some(&main_reads), batch);
        deriving.store(false, Ordering::SeqCst);
        assert_eq!(applied.metas.len(), 2_000);
        let (tries, all_copied) = beside.join().unwrap();
        assert!(
            tries >= 10,
            "the batch was derived too fast to watch: {tries} tries"
        );
        (tries, all_copied)
    })
}

/// A live stream counts as watching while it is open: the indexer then derives eagerly
/// instead of giving a crowded writer the CPU. A closed one stops counting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_live_stream_counts_as_watching() {
    let dir = tempfile::tempdir().unwrap();
    let running = start_server(dir.path()).await;
    let crowd = running.state.store.writer.crowd().clone();
    assert!(!crowd.watched());
    let api = Api::of(&running);
    let mut stream = api.get("/api/stream").send().await.unwrap();
    assert!(stream.status().is_success());
    // Its first event (`ready`) has been sent: the stream is open.
    let ready = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
        .await
        .expect("the stream says it is ready")
        .unwrap();
    assert!(ready.is_some_and(|chunk| String::from_utf8_lossy(&chunk).contains("ready")));
    assert!(crowd.watched());
    drop(stream);
    tokio::time::timeout(Duration::from_secs(30), async {
        while crowd.watched() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the watch ends with the stream");
}
