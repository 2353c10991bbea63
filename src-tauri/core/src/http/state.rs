//! What the handlers share: the store's writer and readers, the endpoint directory, the
//! live channels, the install's tokens and addresses, the tunnel, and the memory budget.
//! It sits below the handlers (ingest, API) that use it; workers get narrow handles.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rusqlite::Connection;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::capture::mentions::Address;
use crate::delivery::follow::{FollowControl, FollowHandle, FollowTarget};
use crate::delivery::forward::{ForwardHandle, ForwardPolicy};
use crate::error::{Error, Result};
use crate::http::listener::ListenerLimits;
use crate::http::memory_budget::MemoryBudget;
use crate::store::db::{self, ReadPool};
use crate::store::endpoints::{self, Directory, Endpoint};
use crate::store::events::EventMeta;
use crate::store::forwards::ForwardUpdate;
use crate::store::settings::{self, Setting};
use crate::store::writer::Writer;
use crate::store::{deliveries, erasure};
use crate::systeme;
use crate::tunnel::{TunnelChoice, TunnelState, Tunnels};

/// An endpoint's secret, changed through the writer (so the ingest directory follows).
struct EndpointSecret<'s> {
    state: &'s AppState,
    endpoint: String,
}

impl systeme::SecretStore for EndpointSecret<'_> {
    async fn store(&self, secret: Option<String>) -> Result<()> {
        let id = self.endpoint.clone();
        self.state
            .change_endpoints(move |conn| endpoints::set_secret(conn, &id, secret.as_deref()))
            .await
            .map(|_| ())
    }
}

/// What the handlers share.
pub struct AppState {
    /// The SQLite file, for exports written straight to disk.
    pub database: PathBuf,
    pub writer: Arc<Writer>,
    pub reads: ReadPool,
    pub directory: Arc<Directory>,
    pub published: broadcast::Sender<Arc<EventMeta>>,
    pub api_token: String,
    /// Per port, so two installs on one machine don't overwrite each other's cookie.
    pub cookie_name: String,
    /// `Host` values the UI/API answers to.
    pub ui_hosts: Vec<String>,
    /// `http://127.0.0.1:PORT`: where webhook URLs point.
    pub ingest_base: String,
    /// `http://127.0.0.1:PORT` where a tunnel or proxy of your own connects, if asked for.
    pub proxy_base: Option<String>,
    pub max_body: usize,
    pub ingest_limits: ListenerLimits,
    pub shutdown: CancellationToken,
    pub tunnels: Tunnels,
    pub systeme_api: Option<String>,
    /// Held while a systeme.io registration runs.
    pub registering: tokio::sync::Mutex<()>,
    /// Held while this server runs: one Hookscope per data folder.
    pub(crate) data_dir_lock: std::sync::Mutex<Option<std::fs::File>>,
    pub forward_policy: ForwardPolicy,
    /// What the user must know about this start (a database moved aside).
    pub notices: Vec<String>,
    /// Forward results as they come, for the live stream.
    pub forwarded: broadcast::Sender<Arc<ForwardUpdate>>,
    /// This install's id, sent with its forwards and replays (see [`crate::store::forwards::LOOP_HEADER`]).
    pub install_id: String,
    /// The listeners deliveries arrive on (webhook, tunnel, proxy): never a forward target.
    pub webhook_listeners: Vec<SocketAddr>,
    /// What deliveries may hold in memory at once.
    pub memory: MemoryBudget,
    /// Told when the retention policy changes, so a run starts at once.
    pub retention_changed: tokio::sync::Notify,
    /// The relay this install follows, and how that goes.
    pub follow: Arc<FollowControl>,
}

impl AppState {
    /// What the forward worker needs of this state.
    pub fn forward_handle(&self) -> ForwardHandle {
        ForwardHandle {
            policy: self.forward_policy.clone(),
            published: self.published.clone(),
            reads: self.reads.clone(),
            writer: self.writer.clone(),
            results: self.forwarded.clone(),
            shutdown: self.shutdown.clone(),
            install_id: self.install_id.clone(),
        }
    }

    /// What the follower needs of this state.
    pub fn follow_handle(&self) -> FollowHandle {
        FollowHandle {
            control: self.follow.clone(),
            writer: self.writer.clone(),
            reads: self.reads.clone(),
            directory: self.directory.clone(),
            api_token: self.api_token.clone(),
            install_id: self.install_id.clone(),
            max_body: self.max_body,
            shutdown: self.shutdown.clone(),
        }
    }

    /// Follows `target` from now on and remembers it for the next start (`None`: stop).
    pub async fn follow_relay(&self, target: Option<FollowTarget>) -> Result<()> {
        let saved = target.clone();
        self.writer
            .run(move |conn| match &saved {
                Some(target) => settings::put_setting(
                    conn,
                    Setting::FollowTarget,
                    &serde_json::to_string(target).expect("a target serialises"),
                ),
                None => settings::delete_setting(conn, Setting::FollowTarget),
            })
            .await?;
        self.follow.set(target);
        Ok(())
    }

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
    pub async fn caught_up(&self, within: std::time::Duration) {
        const WORTH_WAITING: i64 = 5_000;
        // Also what another process stored (an import while Hookscope runs).
        let stored = self.read(deliveries::last_seq).await.unwrap_or(0);
        let target = stored.max(*self.writer.watch_committed().borrow());
        let mut indexed = self.writer.watch_indexed();
        if target - indexed.borrow().through > WORTH_WAITING {
            return;
        }
        let _ = tokio::time::timeout(within, indexed.wait_for(|p| p.through >= target)).await;
    }

    /// What forgetting `email` would remove (nothing is removed).
    /// Anything but one whole email address is refused before anything is read.
    pub async fn erasure_of(&self, email: String) -> Result<erasure::Erasure> {
        let address = Address::parse(&email).map_err(Error::Invalid)?;
        // Indexed first, so deliveries are found by their contact.
        self.caught_up(std::time::Duration::from_secs(10)).await;
        let limit = self.max_body;
        let found = self
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
    pub async fn forget(&self, email: String) -> Result<erasure::ErasureReport> {
        let found = self.erasure_of(email).await?;
        let limit = self.max_body;
        let report = self
            .writer
            .run_learning(move |conn, shapes| erasure::forget(conn, shapes, &found, limit))
            .await?;
        self.writer.run(|conn| erasure::scrub(conn)).await?;
        Ok(report)
    }

    /// Changes endpoints through the writer, then refreshes the ingest directory.
    pub async fn change_endpoints<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let outcome = self
            .writer
            .run(move |conn| {
                let value = work(conn);
                // Even a change that failed halfway may have changed something.
                Ok((value, endpoints::list(conn)?))
            })
            .await?;
        let (value, list) = outcome;
        self.directory.replace(list);
        value
    }

    pub async fn default_endpoint(&self) -> Result<Endpoint> {
        self.read(|conn| {
            endpoints::list(conn)?
                .into_iter()
                .next()
                .ok_or_else(|| Error::NotFound("no endpoint".into()))
        })
        .await
    }

    /// Refuses a forward or replay target that is one of this Hookscope's own webhook
    /// addresses: every delivery forwarded there would come back to be forwarded again.
    /// (One that reaches it another way is caught by [`crate::store::forwards::LOOP_HEADER`].)
    pub fn refuse_own_url(&self, field: &str, target: &str) -> Result<()> {
        let Ok(url) = url::Url::parse(target.trim()) else {
            return Ok(()); // the target's own check says what is wrong with it
        };
        let port = url.port_or_known_default();
        let local_host = match url.host() {
            Some(url::Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                name == "localhost" || name.ends_with(".localhost")
            }
            Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_unspecified(),
            Some(url::Host::Ipv6(ip)) => {
                ip.is_loopback()
                    || ip.is_unspecified()
                    || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
            None => false,
        };
        let on_listener = self.webhook_listeners.iter().any(|listener| {
            Some(listener.port()) == port
                && (local_host
                    || url.host_str().is_some_and(|host| {
                        host.trim_matches(['[', ']']) == listener.ip().to_string()
                    }))
        });
        let status = self.tunnels.status();
        let public_host = status
            .public_url
            .as_deref()
            .and_then(|public| url::Url::parse(public).ok())
            .and_then(|public| public.host_str().map(str::to_ascii_lowercase));
        let through_tunnel =
            public_host.is_some() && url.host_str().map(str::to_ascii_lowercase) == public_host;
        if on_listener || through_tunnel {
            return Err(Error::Invalid(format!(
                "{field}: {target:?} is this Hookscope's own webhook address: every delivery sent there would come back and be sent again. Give your own handler's URL (e.g. http://localhost:3000/webhooks/systeme)"
            )));
        }
        Ok(())
    }

    pub fn webhook_url(&self, endpoint: &Endpoint) -> String {
        format!("{}/h/{}", self.ingest_base, endpoint.token)
    }

    /// The endpoint's URL through the tunnel, while it is up.
    pub fn public_webhook_url(&self, endpoint: &Endpoint) -> Option<String> {
        let status = self.tunnels.status();
        let base = status
            .public_url
            .filter(|_| status.state == TunnelState::Up);
        base.map(|base| format!("{base}/h/{}", endpoint.token))
    }

    /// Points this endpoint's systeme.io Settings webhook at its current public URL
    /// (created with a fresh secret, stored on the endpoint, when there is none).
    pub async fn register_with_systeme(
        &self,
        endpoint_id: String,
        events: Option<Vec<String>>,
    ) -> Result<systeme::Registration> {
        // One registration at a time: a double click must not create two webhooks.
        let _one_at_a_time = self.registering.lock().await;
        let (key, endpoint) = self
            .read(move |conn| {
                Ok((
                    settings::get_setting(conn, Setting::SystemeApiKey)?,
                    endpoints::get(conn, &endpoint_id)?,
                ))
            })
            .await?;
        let key = key.ok_or_else(|| {
            Error::Invalid(
                "set your systeme.io API key first (systeme.io → Settings → Public API keys)"
                    .into(),
            )
        })?;
        let status = self.tunnels.status();
        let base = status
            .public_url
            .filter(|_| status.state == TunnelState::Up)
            .ok_or_else(|| {
                Error::Invalid(
                    "no public URL yet: start a tunnel (cloudflared or ngrok) first".into(),
                )
            })?;
        let store = EndpointSecret {
            state: self,
            endpoint: endpoint.id.clone(),
        };
        systeme::register_endpoint(
            self.systeme_api.as_deref(),
            &key,
            &endpoint,
            &base,
            events,
            &store,
        )
        .await
    }

    /// Remembers `choice` and switches the running tunnel to it. A given ngrok
    /// authtoken is stored first (an empty one is forgotten).
    pub async fn choose_tunnel(
        &self,
        choice: TunnelChoice,
        ngrok_authtoken: Option<String>,
    ) -> Result<()> {
        let remembered = choice.to_string();
        let (last_url, stored_token) = self
            .writer
            .run(move |conn| {
                match ngrok_authtoken.as_deref().map(str::trim) {
                    Some("") => settings::delete_setting(conn, Setting::NgrokToken)?,
                    Some(token) => settings::put_setting(conn, Setting::NgrokToken, token)?,
                    None => {}
                }
                settings::put_setting(conn, Setting::Tunnel, &remembered)?;
                Ok((
                    settings::get_setting(conn, Setting::TunnelLastUrl)?,
                    settings::get_setting(conn, Setting::NgrokToken)?,
                ))
            })
            .await?;
        self.tunnels.set_stored_ngrok_authtoken(stored_token);
        self.tunnels.switch(choice, last_url).await;
        Ok(())
    }
}
