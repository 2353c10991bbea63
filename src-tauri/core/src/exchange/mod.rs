//! Events in and out of the store as files: the export format, exports and imports.

pub mod delivery_json;
pub mod event_json;
pub mod export;
pub mod import;
