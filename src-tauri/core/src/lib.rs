//! Hookscope's capture core: everything the desktop shell and the CLI share. The folders
//! are its layers, each importing only from those listed before it:
//!
//! - [`capture`]: what a delivery is and says (decoding, facts, signatures); pure, no I/O.
//! - [`store`]: the SQLite store: opening and migrations, the writer, one module per table.
//! - [`delivery`], [`exchange`], [`systeme`], [`tunnel`]: forwarding and replay, export and
//!   import, systeme.io's API, public URLs.
//! - [`service`]: what a running Hookscope does, as narrow services (store, erasure and
//!   retention, public URLs, systeme.io, following, forwarding).
//! - [`http`]: the listeners, the state their handlers share, the API.
//! - [`app`]: starting and stopping all of it.
//!
//! `error`, `faults`, `timefmt` and `tokens` sit below all of them. See ARCHITECTURE.md.

pub mod app;
pub mod capture;
pub mod delivery;
pub mod error;
pub mod exchange;
pub mod faults;
pub mod http;
pub mod service;
pub mod store;
pub mod systeme;
pub mod timefmt;
pub mod tokens;
pub mod tunnel;

pub use app::{Running, ServeOptions};
pub use error::{Error, Result};
