//! What a running Hookscope does, as narrow services: each owns its operations and holds
//! only what they need. `app::start` builds them; the HTTP handlers, the background tasks
//! and the desktop shell call them, and hold no domain logic of their own.
//!
//! - [`store::Store`]: reads, the one writer, the ingest directory, published deliveries.
//! - [`erasure::Erasure`] and [`erasure::Retention`]: forgetting a person, pruning by age.
//! - [`public::PublicUrls`]: the tunnel, the webhook URLs, targets that would loop.
//! - [`systeme::SystemeLink`]: the systeme.io account and its Settings webhooks.
//! - [`following::Following`]: the relay this install follows.
//! - [`forwarding::Forwarding`]: forward results and the forward worker's handle.
//! - [`probe::Probe`]: whether the public URL reaches this Hookscope.
//! - [`alerts::Alerts`]: the alert rules and the watcher raising alerts
//!   ([`alert_webhook`] sends them on).
//! - [`health::Health`]: all of that per endpoint, with systeme.io's webhooks.

pub mod alert_webhook;
pub mod alerts;
pub mod erasure;
pub mod following;
pub mod forwarding;
pub mod health;
pub mod probe;
pub mod public;
pub mod store;
pub mod systeme;

/// Live viewers may fall this many events behind before they are told to resync.
pub const STREAM_BUFFER: usize = 4096;
