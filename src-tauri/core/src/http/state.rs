//! What the handlers share: the services (`crate::service`), the UI/API's credentials,
//! what the ingest listeners work within, and the shutdown signal. Domain operations live
//! in the services; a handler takes the one it needs (`State<Arc<Store>>`, …) through
//! [`FromRef`], or this state when it shows several.

use std::sync::Arc;

use axum::extract::FromRef;
use tokio_util::sync::CancellationToken;

use crate::capture::token_guard::TokenGuard;
use crate::http::listener::ListenerLimits;
use crate::http::memory_budget::MemoryBudget;
use crate::service::alerts::Alerts;
use crate::service::erasure::{Erasure, Retention};
use crate::service::following::Following;
use crate::service::forwarding::Forwarding;
use crate::service::health::Health;
use crate::service::probe::Probe;
use crate::service::public::PublicUrls;
use crate::service::store::Store;
use crate::service::systeme::SystemeLink;

/// What the handlers share.
pub struct AppState {
    pub store: Arc<Store>,
    pub erasure: Arc<Erasure>,
    pub retention: Arc<Retention>,
    pub public: Arc<PublicUrls>,
    pub systeme: Arc<SystemeLink>,
    pub follow: Arc<Following>,
    pub forwarding: Arc<Forwarding>,
    pub probe: Arc<Probe>,
    pub alerts: Arc<Alerts>,
    pub health: Arc<Health>,
    pub access: Access,
    /// Timeouts and limits of the ingest listeners.
    pub ingest_limits: ListenerLimits,
    /// What deliveries may hold in memory at once.
    pub memory: MemoryBudget,
    pub shutdown: CancellationToken,
    /// What the user must know about this start (a database moved aside).
    pub notices: Vec<String>,
    /// Held while this server runs: one Hookscope per data folder.
    pub(crate) data_dir_lock: std::sync::Mutex<Option<std::fs::File>>,
}

/// Who may use the UI/API, and the hosts it answers to.
pub struct Access {
    /// The install's API token (bearer header or cookie); ingest keeps it out of
    /// deliveries.
    pub api_token: String,
    /// The token's forms that deliveries are searched for, made once.
    pub token_guard: Arc<TokenGuard>,
    /// Per port, so two installs on one machine don't overwrite each other's cookie.
    pub cookie_name: String,
    /// `Host` values the UI/API answers to.
    pub ui_hosts: Vec<String>,
}

/// The API router's state: a handler extracts the whole [`AppState`] or only the service
/// it needs (`State<Arc<Store>>`, `State<Arc<Erasure>>`, …).
#[derive(Clone)]
pub struct Handlers(pub Arc<AppState>);

impl FromRef<Handlers> for Arc<AppState> {
    fn from_ref(handlers: &Handlers) -> Self {
        handlers.0.clone()
    }
}

macro_rules! services_from_state {
    ($($field:ident: $service:ty),* $(,)?) => {
        $(impl FromRef<Handlers> for Arc<$service> {
            fn from_ref(handlers: &Handlers) -> Self {
                handlers.0.$field.clone()
            }
        })*
    };
}

services_from_state!(
    store: Store,
    erasure: Erasure,
    retention: Retention,
    public: PublicUrls,
    systeme: SystemeLink,
    follow: Following,
    forwarding: Forwarding,
    probe: Probe,
    alerts: Alerts,
    health: Health,
);
