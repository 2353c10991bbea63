//! Hookscope's capture core: everything the desktop shell and the CLI share.
//!
//! The flow of one delivery: [`ingest`] reads it, [`capture`] classifies and [`decode`]s it,
//! the [`writer`] commits it (group commit) and answers, then publishes a summary that
//! [`api`] streams to the UI. Reads go through a pool of read-only connections ([`db`]).

pub mod api;
pub mod backfill;
pub mod body;
pub mod capture;
pub mod contact_card;
pub mod db;
pub mod decode;
pub mod endpoints;
pub mod error;
pub mod event_json;
pub mod export;
pub mod facts;
pub mod forward;
pub mod funnels;
pub mod http_listener;
pub mod import;
pub mod ingest;
pub mod memory_budget;
pub mod plain_text;
pub mod queries;
pub mod replay;
pub mod sender;
pub mod server;
pub mod shapes;
pub mod signature;
pub mod synth;
pub mod systeme_api;
pub mod timefmt;
pub mod tokens;
pub mod tunnel;
pub mod ui_assets;
pub mod writer;

pub use error::{Error, Result};
pub use server::{Running, ServeOptions};
