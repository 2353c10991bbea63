//! The derived file (`hookscope-derived.db`) beside the deliveries: acknowledging a delivery
//! never waits for the indexer holding it, and a derived file that is not the store's as
//! it is now (an erasure cut in two by a crash, another store's, damaged, missing) is
//! derived again from the deliveries at the next open.

use std::path::Path;
use std::time::{Duration, Instant};

use hookscope_core::capture::mentions::Address;
use hookscope_core::store::db::{self, Synchronous};
use hookscope_core::store::indexer::{self, derive};
use hookscope_core::store::settings::{self, Setting};
use hookscope_core::store::{endpoints, erasure};

use crate::indexer::store_sales;
use crate::support::{Api, deliver, fixture, start_server};

const INFLATE_LIMIT: usize = 1 << 20;

fn count(conn: &rusqlite::Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// A store of `sales` deliveries, every one derived; closed.
fn derived_store(dir: &Path, sales: i64) {
    let mut conn = db::open_writer(&db::database_path(dir), Synchronous::Normal).unwrap();
    endpoints::ensure_default(&conn).unwrap();
    store_sales(&mut conn, sales);
    indexer::run_to_end(&mut conn, INFLATE_LIMIT, |_, _| {}).unwrap();
}

/// Whether `needle` is in any file of `dir`, as bytes.
fn in_any_file(dir: &Path, needle: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            std::fs::read(p)
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
        })
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_is_acknowledged_while_the_indexer_holds_the_derived_file() {
    let dir = tempfile::tempdir().unwrap();
    let running = start_server(dir.path()).await;
    let http = reqwest::Client::new();
    let sale = fixture("systeme-settings/sale-new");
    deliver(&http, &running.webhook_url, &sale).await;

    // What an index batch holds while it derives: the derived file's write lock, in a
    // transaction that has read the deliveries.
    let path = db::database_path(dir.path());
    let (hold, held) = std::sync::mpsc::channel::<()>();
    let (locked, is_locked) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let mut conn = db::open_indexer(&path).unwrap();
        let tx = conn.transaction().unwrap();
        derive::lock_derived(&tx).unwrap();
        count(&tx, "SELECT count(*) FROM deliveries");
        locked.send(()).unwrap();
        // Held until the test says, at most 30 s.
        let _ = held.recv_timeout(Duration::from_secs(30));
        tx.commit().unwrap();
    });
    is_locked.recv_timeout(Duration::from_secs(10)).unwrap();
    // It is the derived file's lock: another writer of it waits.
    let other = db::open_second_writer(&db::database_path(dir.path()), Synchronous::Full).unwrap();
    other.busy_timeout(Duration::ZERO).unwrap();
    let refused = other
        .execute("UPDATE contacts SET events = events WHERE 0", [])
        .unwrap_err();
    assert_eq!(
        refused.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy),
        "{refused}"
    );
    drop(other);

    let started = Instant::now();
    let acknowledged = tokio::time::timeout(
        Duration::from_secs(5),
        deliver(
            &http,
            &running.webhook_url,
            &fixture("systeme-settings/contact-tag-added"),
        ),
    )
    .await;
    let waited = started.elapsed();
    hold.send(()).unwrap();
    holder.join().unwrap();
    assert!(
        acknowledged.is_ok(),
        "acknowledged without the derived file's lock (waited {waited:?})"
    );

    // The indexer goes on once the lock is let go: both are derived.
    let api = Api::of(&running);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = api.json("/api/status").await;
        if status["indexing"]["behind"] == 0 && status["events"] == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "not derived: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let events = api.json("/api/events").await;
    assert_eq!(events["events"].as_array().unwrap().len(), 2, "{events}");
    running.stop().await;
}

#[test]
fn an_erasure_cut_between_the_two_files_is_derived_again() {
    // Each file's commit is atomic, the pair is not: a crash can keep one file's part of an
    // erasure and lose the other's. Made here by putting back the derived file as it was
    // before the erasure (its part lost) beside the deliveries without the person's.
    let dir = tempfile::tempdir().unwrap();
    derived_store(dir.path(), 300);
    let path = db::database_path(dir.path());
    let derived = db::derived_path(&path);
    let before_erasure = dir.path().join("derived-before");
    {
        let mut conn = db::open_writer(&path, Synchronous::Full).unwrap();
        conn.query_row("PRAGMA derived.wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        std::fs::copy(&derived, &before_erasure).unwrap();
        let address = Address::parse("buyer-17@systeme.io").unwrap();
        let found = erasure::find(&conn, &address, INFLATE_LIMIT).unwrap();
        assert_eq!(found.keyed.len(), 1, "{found:?}");
        let report = erasure::forget(&mut conn, &found, INFLATE_LIMIT).unwrap();
        assert_eq!(report.deliveries, 1);
        erasure::scrub(&conn).unwrap();
    }
    std::fs::rename(&before_erasure, &derived).unwrap();
    assert!(
        !in_any_file(dir.path(), "buyer-17@systeme.io").is_empty(),
        "the lost part: the derived file still has them"
    );

    let mut conn = db::open_writer(&path, Synchronous::Full).unwrap();
    assert_eq!(
        indexer::position(&conn).unwrap(),
        0,
        "derived again from the start"
    );
    assert_eq!(count(&conn, "SELECT count(*) FROM events"), 0);
    let derived_again = indexer::run_to_end(&mut conn, INFLATE_LIMIT, |_, _| {}).unwrap();
    assert_eq!(derived_again, 299, "every delivery left");
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM events WHERE contact_key = 'buyer-17@systeme.io'"
        ),
        0
    );
    assert_eq!(
        count(&conn, "SELECT n FROM row_counts WHERE name = 'events'"),
        299
    );
    assert_eq!(count(&conn, "SELECT count(*) FROM contacts"), 299);
    drop(conn);
    assert_eq!(
        in_any_file(dir.path(), "buyer-17@systeme.io"),
        Vec::<String>::new(),
        "no byte of them is left in any file"
    );

    // The other way round: the derived file's part kept and the deliveries' lost. The
    // person's deliveries are all there again (the erasure never finished): derived again,
    // they are back.
    let conn = db::open_writer(&path, Synchronous::Full).unwrap();
    settings::put_setting(&conn, Setting::DerivedErasureGeneration, "99").unwrap();
    drop(conn);
    let mut conn = db::open_writer(&path, Synchronous::Full).unwrap();
    assert_eq!(indexer::position(&conn).unwrap(), 0);
    indexer::run_to_end(&mut conn, INFLATE_LIMIT, |_, _| {}).unwrap();
    assert_eq!(count(&conn, "SELECT count(*) FROM events"), 299);
    // And a store as it should be is left alone at the next open.
    drop(conn);
    let conn = db::open_writer(&path, Synchronous::Full).unwrap();
    assert_eq!(indexer::position(&conn).unwrap(), 300, "kept as derived");
}

#[test]
fn a_derived_file_that_is_not_this_stores_is_made_again() {
    let ours = tempfile::tempdir().unwrap();
    let theirs = tempfile::tempdir().unwrap();
    derived_store(ours.path(), 20);
    derived_store(theirs.path(), 50);
    let path = db::database_path(ours.path());
    let derived = db::derived_path(&path);
    assert_eq!(
        derived.file_name().unwrap(),
        "hookscope-derived.db",
        "beside hookscope.db"
    );

    // Another store's derived file, copied in with it.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", derived.display()));
    }
    std::fs::copy(
        db::derived_path(&db::database_path(theirs.path())),
        &derived,
    )
    .unwrap();
    let mut conn = db::open_writer(&path, Synchronous::Full).unwrap();
    assert_eq!(
        count(&conn, "SELECT count(*) FROM events"),
        0,
        "theirs is gone"
    );
    indexer::run_to_end(&mut conn, INFLATE_LIMIT, |_, _| {}).unwrap();
    assert_eq!(count(&conn, "SELECT count(*) FROM events"), 20);
    drop(conn);

    // Damaged: made again, the deliveries untouched.
    std::fs::write(&derived, vec![0x42u8; 8192]).unwrap();
    let mut conn = db::open_writer(&path, Synchronous::Full).unwrap();
    assert_eq!(indexer::position(&conn).unwrap(), 0);
    indexer::run_to_end(&mut conn, INFLATE_LIMIT, |_, _| {}).unwrap();
    assert_eq!(count(&conn, "SELECT count(*) FROM events"), 20);
    drop(conn);

    // Missing: made again.
    std::fs::remove_file(&derived).unwrap();
    let mut conn = db::open_writer(&path, Synchronous::Full).unwrap();
    assert_eq!(indexer::position(&conn).unwrap(), 0);
    indexer::run_to_end(&mut conn, INFLATE_LIMIT, |_, _| {}).unwrap();
    assert_eq!(count(&conn, "SELECT count(*) FROM events"), 20);
    assert_eq!(
        count(&conn, "SELECT count(*) FROM deliveries"),
        20,
        "no delivery lost"
    );
    // The deliveries' file holds no derived table; the derived file holds them all.
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM main.sqlite_schema WHERE name IN ('events', 'contacts', 'contact_cards', 'event_shapes', 'events_fts', 'row_counts')"
        ),
        0
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM derived.sqlite_schema WHERE name IN ('events', 'contacts', 'contact_cards', 'event_shapes', 'events_fts', 'row_counts')"
        ),
        6
    );
    drop(conn);
    // Readers see both files.
    let reader = db::open_reader(&path).unwrap();
    assert_eq!(count(&reader, "SELECT count(*) FROM events"), 20);
}
