//! The relay this install follows: which one (remembered across starts) and how it goes.

use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::capture::token_guard::TokenGuard;
use crate::delivery::follow::{FollowControl, FollowHandle, FollowTarget, FollowView};
use crate::error::Result;
use crate::store::settings::{self, Setting};

use super::store::Store;

pub struct Following {
    store: Arc<Store>,
    control: Arc<FollowControl>,
    /// What a pulled delivery must not hold (the install's API token).
    api_token: Arc<TokenGuard>,
    install_id: String,
    shutdown: CancellationToken,
}

impl Following {
    pub fn new(
        store: Arc<Store>,
        control: Arc<FollowControl>,
        api_token: Arc<TokenGuard>,
        install_id: String,
        shutdown: CancellationToken,
    ) -> Following {
        Following {
            store,
            control,
            api_token,
            install_id,
            shutdown,
        }
    }

    pub fn view(&self) -> FollowView {
        self.control.view()
    }

    pub fn watch_view(&self) -> watch::Receiver<FollowView> {
        self.control.watch_view()
    }

    /// Follows `target` from now on and remembers it for the next start (`None`: stop).
    pub async fn follow(&self, target: Option<FollowTarget>) -> Result<()> {
        let saved = target.clone();
        self.store
            .writer
            .run(move |conn| match &saved {
                Some(target) => settings::put_setting(
                    conn,
                    Setting::FollowTarget,
                    &serde_json::to_string(target).expect("a target serialises"),
                ),
                None => settings::delete_setting(conn, Setting::FollowTarget),
            })
            .await?;
        self.control.set(target);
        Ok(())
    }

    /// The relay to follow in this run, already remembered (`None`: none).
    pub fn start_following(&self, target: Option<FollowTarget>) {
        self.control.set(target);
    }

    /// What the follower's task needs.
    pub fn handle(&self) -> FollowHandle {
        FollowHandle {
            control: self.control.clone(),
            writer: self.store.writer.clone(),
            reads: self.store.reads.clone(),
            directory: self.store.directory.clone(),
            api_token: self.api_token.clone(),
            install_id: self.install_id.clone(),
            max_body: self.store.max_body,
            shutdown: self.shutdown.clone(),
        }
    }
}
