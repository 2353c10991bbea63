//! A stored delivery, exported (JSON array and NDJSON) and imported into another store,
//! comes back byte for byte; importing it again adds nothing.
#![no_main]

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use hookscope_core::exchange::export::{Format, export};
use hookscope_core::exchange::import::import;
use hookscope_core::store::db::{self, Connection, Synchronous};
use hookscope_core::store::endpoints;
use hookscope_core::store::events::get_event;
use hookscope_core::store::events::query::EventFilter;
use hookscope_core::store::{deliveries, indexer};
use hookscope_core::timefmt::format_micros;
use libfuzzer_sys::fuzz_target;

struct Stores {
    _dir: tempfile::TempDir,
    source: Connection,
    target: Connection,
    endpoint: (String, String),
}

static STORES: Mutex<Option<Stores>> = Mutex::new(None);
/// Each input is received a moment after the previous one, so a `since` filter picks it.
static CLOCK: AtomicI64 = AtomicI64::new(1_764_000_000_000_000);

fn stores() -> Stores {
    let dir = tempfile::tempdir().unwrap();
    let source = db::open_writer(&dir.path().join("source.db"), Synchronous::Normal).unwrap();
    let target = db::open_writer(&dir.path().join("target.db"), Synchronous::Normal).unwrap();
    let endpoint = endpoints::ensure_default(&source).unwrap();
    Stores {
        _dir: dir,
        source,
        target,
        endpoint: (endpoint.id, endpoint.name),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut guard = STORES.lock().unwrap();
    let stores = guard.get_or_insert_with(stores);
    let received_at = CLOCK.fetch_add(1_000, Ordering::Relaxed);
    let raw = hookscope_fuzz::delivery(data, received_at, (&stores.endpoint.0, &stores.endpoint.1));
    let (id, sent) = (raw.id.clone(), raw.body.clone());
    // Decoding must not panic on anything (what the indexer does with every delivery).
    hookscope_fuzz::capture(raw.clone());
    let tx = stores.source.transaction().unwrap();
    deliveries::insert(&tx, &raw).unwrap();
    tx.commit().unwrap();
    indexer::run_to_end(&mut stores.source, 1 << 20, |_, _| {}).unwrap();
    let filter = EventFilter {
        since: Some(format_micros(received_at)),
        ..Default::default()
    };
    let format = if data.len().is_multiple_of(2) {
        Format::Json
    } else {
        Format::Ndjson
    };
    let mut exported = Vec::new();
    let count = export(&stores.source, &filter, format, &mut exported, 1 << 20).unwrap();
    assert_eq!(count, 1, "the new event alone is exported");
    if format == Format::Json {
        hookscope_fuzz::parse_deep::<serde_json::Value>(&exported)
            .expect("the export is valid JSON");
    }
    let report = import(&mut stores.target, &exported[..], 1 << 20).expect("the export imports");
    indexer::run_to_end(&mut stores.target, 1 << 20, |_, _| {}).unwrap();
    assert_eq!((report.imported, report.already_present), (1, 0));
    let stored = get_event(&stores.target, &id).expect("the imported event is found");
    assert_eq!(
        stored.body,
        sent.to_vec(),
        "byte for byte after the round trip"
    );
    let again = import(&mut stores.target, &exported[..], 1 << 20).unwrap();
    assert_eq!(
        (again.imported, again.already_present),
        (0, 1),
        "no duplicate"
    );
});
