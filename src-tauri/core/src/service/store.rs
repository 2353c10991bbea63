//! The store as a running Hookscope uses it: reads on the pool, changes through the one
//! writer (also those a `hookscope` command makes), the ingest directory kept in step with
//! endpoint changes, and the channel each indexed delivery is published on.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::broadcast;

use crate::capture::body::BodyLimit;
use crate::capture::token_guard::TokenGuard;
use crate::error::{Error, Result};
use crate::exchange::import::{self, ImportReport};
use crate::store::db::{self, ReadPool};
use crate::store::endpoints::{self, Directory, Endpoint};
use crate::store::events::EventMeta;
use crate::store::writer::Writer;

pub struct Store {
    /// The SQLite file, for exports written straight to disk.
    pub database: PathBuf,
    pub writer: Arc<Writer>,
    pub reads: ReadPool,
    /// Endpoints by token, for ingest (memory, no query).
    pub directory: Arc<Directory>,
    /// Each indexed delivery's summary: the live stream and the forward worker follow it.
    pub published: broadcast::Sender<Arc<EventMeta>>,
    /// The largest body accepted, which every decoding of a stored body keeps to.
    pub max_body: BodyLimit,
}

impl Store {
    /// Runs a read on a pooled read-only connection, off the async threads.
    pub async fn read<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        db::read(&self.reads, work).await
    }

    /// Waits (up to `within`) until what was committed when called is indexed, so that a
    /// read includes every delivery acknowledged before it. A large backlog (an upgrade,
    /// a reindex) is not waited for: the status and the window say how far it has come.
    pub async fn caught_up(&self, within: Duration) {
        const WORTH_WAITING: i64 = 5_000;
        let target = *self.writer.watch_committed().borrow();
        let mut indexed = self.writer.watch_indexed();
        if target - indexed.borrow().through > WORTH_WAITING {
            return;
        }
        let _ = tokio::time::timeout(within, indexed.wait_for(|p| p.through >= target)).await;
    }

    /// Changes endpoints through the writer, which replaces the ingest directory in the
    /// same turn: changes reach ingest in the order they were made.
    pub async fn change_endpoints<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let directory = self.directory.clone();
        self.writer
            .run(move |conn| {
                let value = work(conn);
                // Even a change that failed halfway may have changed something.
                directory.replace(endpoints::list(conn)?);
                Ok(value)
            })
            .await?
    }

    /// Loads an export (a JSON array or NDJSON, read from `input` on a blocking thread)
    /// through the writer, a batch per turn so deliveries keep being acknowledged
    /// meanwhile; the indexer derives the rest as for any delivery.
    pub async fn import(
        self: &Arc<Self>,
        input: impl std::io::Read + Send + 'static,
        api_token: Arc<TokenGuard>,
    ) -> Result<ImportReport> {
        let store = self.clone();
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            import::import_with(input, store.max_body.bytes(), &api_token, &mut |batch| {
                runtime.block_on(store.writer.store_imported(batch))
            })
        })
        .await
        .map_err(|_| Error::ShuttingDown)?
    }

    /// The default endpoint, from the ingest directory (the writer replaces it after
    /// every endpoint change): no trip to the read pool.
    pub fn default_endpoint(&self) -> Result<Endpoint> {
        self.directory
            .default_endpoint()
            .ok_or_else(|| Error::NotFound("no endpoint".into()))
    }
}
