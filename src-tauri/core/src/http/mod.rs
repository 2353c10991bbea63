//! Hookscope's HTTP side: the accept loop and its limits, the ingest listener, the UI's
//! assets and API, a relay's sync listener, and the state their handlers share.

pub mod api;
pub mod ingest;
pub mod listener;
pub mod memory_budget;
pub mod state;
pub mod sync;
pub mod ui_assets;
