//! Events in and out of the store as files: the export format, exports and imports, and
//! the sync protocol a relay and its followers speak.

pub mod delivery_json;
pub mod event_json;
pub mod export;
pub mod import;
pub mod sync_protocol;
