//! Decoding a delivery never panics, and its event JSON (document and line layouts) is
//! valid JSON carrying the body byte for byte.
#![no_main]

use hookscope_core::exchange::event_json::{Layout, write_event};
use hookscope_core::store::events::EventMeta;
use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;

fuzz_target!(|data: &[u8]| {
    let raw = hookscope_fuzz::delivery(data, 1_764_000_000_000_000, ("ep", "Default"));
    let sent = raw.body.clone();
    let capture = hookscope_fuzz::capture(raw);
    let meta = EventMeta::from_capture(&capture);
    for layout in [Layout::Document, Layout::Line] {
        let mut out = Vec::new();
        write_event(&mut out, &meta, capture.body_kind, &sent, layout, 1 << 20).unwrap();
        if layout == Layout::Line {
            assert!(!out.contains(&b'\n'), "one event per line");
        }
        let event: serde_json::Map<String, serde_json::Value> =
            hookscope_fuzz::parse_deep(&out).expect("the event is valid JSON");
        let raw_body =
            hookscope_fuzz::parse_deep::<std::collections::HashMap<String, &RawValue>>(&out)
                .unwrap()
                .get("body")
                .map(|b| b.get().to_string());
        assert_eq!(
            hookscope_fuzz::payload_of(&event, raw_body.as_deref()),
            sent.to_vec(),
            "the body byte for byte"
        );
        assert_eq!(event["size"], sent.len(), "its size");
    }
});
