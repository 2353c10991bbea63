//! Forwarding deliveries to endpoints' targets: the worker's handle and the results it
//! announces.

use std::sync::Arc;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::delivery::forward::{ForwardHandle, ForwardPolicy};
use crate::store::forwards::ForwardUpdate;

use super::store::Store;

pub struct Forwarding {
    store: Arc<Store>,
    policy: ForwardPolicy,
    /// Forward results as they come, for the live stream.
    pub results: broadcast::Sender<Arc<ForwardUpdate>>,
    /// This install's id, sent with its forwards and replays (see
    /// [`crate::store::forwards::LOOP_HEADER`]).
    pub install_id: String,
    shutdown: CancellationToken,
}

impl Forwarding {
    pub fn new(
        store: Arc<Store>,
        policy: ForwardPolicy,
        install_id: String,
        shutdown: CancellationToken,
    ) -> Forwarding {
        Forwarding {
            store,
            policy,
            results: broadcast::channel(crate::service::STREAM_BUFFER).0,
            install_id,
            shutdown,
        }
    }

    /// What the forward worker needs.
    pub fn handle(&self) -> ForwardHandle {
        ForwardHandle {
            policy: self.policy.clone(),
            published: self.store.published.clone(),
            reads: self.store.reads.clone(),
            writer: self.store.writer.clone(),
            results: self.results.clone(),
            shutdown: self.shutdown.clone(),
            install_id: self.install_id.clone(),
        }
    }
}
