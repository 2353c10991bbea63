//! Deleting on purpose: a person forgotten on request, deliveries pruned by age.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::capture::mentions::Address;
use crate::error::{Error, Result};
use crate::store::erasure::{self, ErasureReport};
use crate::store::retention::{self, PolicyChange, PrunePreview, RetentionPolicy};
use crate::store::settings::{self, Setting};
use crate::timefmt::now_micros;

use super::store::Store;

pub struct Erasure {
    store: Arc<Store>,
}

impl Erasure {
    pub fn new(store: Arc<Store>) -> Erasure {
        Erasure { store }
    }

    /// What forgetting `email` would remove (nothing is removed).
    /// Anything but one whole email address is refused before anything is read.
    pub async fn erasure_of(&self, email: String) -> Result<erasure::Erasure> {
        let address = Address::parse(&email).map_err(Error::Invalid)?;
        // Indexed first, so deliveries are found by their contact.
        self.store.caught_up(Duration::from_secs(10)).await;
        let limit = self.store.max_body.bytes();
        let found = self
            .store
            .read(move |conn| erasure::find(conn, &address, limit))
            .await?;
        if found.keyed.is_empty() && found.mentioning.is_empty() {
            return Err(Error::NotFound(format!(
                "nothing stored is about or mentions {}",
                found.email
            )));
        }
        Ok(found)
    }

    /// Forgets a person: every delivery about them or mentioning their email, and all
    /// that was derived from those, then the file scrubbed.
    pub async fn forget(&self, email: String) -> Result<ErasureReport> {
        let found = self.erasure_of(email).await?;
        let limit = self.store.max_body.bytes();
        let writer = &self.store.writer;
        let report = writer
            .run(move |conn| erasure::forget(conn, &found, limit))
            .await?;
        writer.run(|conn| erasure::scrub(conn)).await?;
        Ok(report)
    }
}

/// How long deliveries are kept, and the runs that prune what is past it.
pub struct Retention {
    store: Arc<Store>,
    /// Told when the policy changes, so a run starts at once.
    changed: Notify,
}

impl Retention {
    pub fn new(store: Arc<Store>) -> Retention {
        Retention {
            store,
            changed: Notify::new(),
        }
    }

    pub async fn policy(&self) -> Result<RetentionPolicy> {
        self.store.read(retention::policy).await
    }

    /// Sets the install's retention (or an endpoint's own); a run starts at once.
    pub async fn change(&self, change: PolicyChange) -> Result<RetentionPolicy> {
        let policy = self
            .store
            .writer
            .run(move |conn| {
                retention::set_days(conn, change.endpoint.as_deref(), change.days)?;
                retention::policy(conn)
            })
            .await?;
        self.changed.notify_one();
        Ok(policy)
    }

    /// How many deliveries the policy prunes now, and would with `change` (nothing
    /// changes).
    pub async fn preview(&self, change: PolicyChange) -> Result<PrunePreview> {
        self.store
            .read(move |conn| retention::preview(conn, now_micros(), &change))
            .await
    }

    /// Resolves when the policy changes.
    pub async fn changed(&self) {
        self.changed.notified().await
    }

    /// One run: prunes deliveries past their endpoint's or the install's retention, a
    /// batch per writer turn so acknowledgements never wait long, and finishes a run a
    /// crash cut short.
    pub async fn prune_once(&self) -> Result<()> {
        let store = &self.store;
        let (policy, unfinished) = store
            .read(|conn| {
                Ok((
                    retention::policy(conn)?,
                    erasure::scrub_pending(conn)?
                        || settings::get_setting(conn, Setting::ErasureShapesPending)?.is_some(),
                ))
            })
            .await?;
        if policy.days.is_none() && policy.endpoints.is_empty() && !unfinished {
            return Ok(());
        }
        let now = now_micros();
        let limit = store.max_body.bytes();
        let mut pruned = 0;
        loop {
            let batch = store
                .writer
                .run(move |conn| retention::prune_batch(conn, now, limit))
                .await?;
            if batch == 0 {
                break;
            }
            pruned += batch;
        }
        store
            .writer
            .run(move |conn| retention::finish(conn, pruned, now, limit))
            .await?;
        if pruned > 0 {
            tracing::info!(pruned, "deliveries past their retention pruned");
        }
        Ok(())
    }
}
