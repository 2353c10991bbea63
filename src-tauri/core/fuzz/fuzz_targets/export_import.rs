//! A stored delivery, exported and imported into another store, comes back byte for byte
//! ([`hookscope_fuzz::ExportImport::case`]).
#![no_main]

use std::sync::Mutex;

use hookscope_fuzz::ExportImport;
use libfuzzer_sys::fuzz_target;

static STORES: Mutex<Option<ExportImport>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let mut stores = STORES.lock().unwrap();
    stores.get_or_insert_with(ExportImport::default).case(data);
});
