//! The systeme.io account: its API key (kept on this machine, never shown again), its
//! Settings webhooks, and pointing one at this Hookscope.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::store::endpoints::{self, Endpoint};
use crate::store::settings::{self, Setting};
use crate::systeme::{self, Registration, RemoteWebhook};

use super::public::PublicUrls;
use super::store::Store;

pub struct SystemeLink {
    store: Arc<Store>,
    public: Arc<PublicUrls>,
    /// systeme.io's API base; `None`: the real one.
    api_base: Option<String>,
    /// Held while a registration runs: a double click must not create two webhooks.
    registering: tokio::sync::Mutex<()>,
}

/// An endpoint's secret, changed through the writer (so the ingest directory follows).
struct EndpointSecret<'s> {
    store: &'s Store,
    endpoint: String,
}

impl systeme::SecretStore for EndpointSecret<'_> {
    async fn store(&self, secret: Option<String>) -> Result<()> {
        let id = self.endpoint.clone();
        self.store
            .change_endpoints(move |conn| endpoints::set_secret(conn, &id, secret.as_deref()))
            .await
            .map(|_| ())
    }
}

impl SystemeLink {
    pub fn new(store: Arc<Store>, public: Arc<PublicUrls>, api_base: Option<String>) -> Self {
        SystemeLink {
            store,
            public,
            api_base,
            registering: tokio::sync::Mutex::new(()),
        }
    }

    /// Whether an API key is stored.
    pub async fn has_key(&self) -> Result<bool> {
        Ok(self
            .store
            .read(|conn| settings::get_setting(conn, Setting::SystemeApiKey))
            .await?
            .is_some())
    }

    /// Stores the API key (trimmed), or forgets it with `None`.
    pub async fn set_key(&self, key: Option<String>) -> Result<()> {
        let key = key.map(|k| k.trim().to_string());
        if key
            .as_deref()
            .is_some_and(|k| k.is_empty() || k.len() > 500)
        {
            return Err(Error::Invalid(
                "api_key: paste the key from systeme.io → Settings → Public API keys, or null to forget it".into(),
            ));
        }
        self.store
            .writer
            .run(move |conn| match key {
                Some(key) => settings::put_setting(conn, Setting::SystemeApiKey, &key),
                None => settings::delete_setting(conn, Setting::SystemeApiKey),
            })
            .await
    }

    /// The account's Settings webhooks, each with the endpoint it points at (if any).
    pub async fn webhooks(&self) -> Result<Vec<(RemoteWebhook, Option<Endpoint>)>> {
        let (key, endpoints) = self
            .store
            .read(|conn| {
                Ok((
                    settings::get_setting(conn, Setting::SystemeApiKey)?,
                    endpoints::list(conn)?,
                ))
            })
            .await?;
        let key = key.ok_or_else(|| Error::Invalid("set your systeme.io API key first".into()))?;
        let client = systeme::Client::new(self.api_base.as_deref(), &key)?;
        Ok(client
            .list()
            .await?
            .into_iter()
            .map(|webhook| {
                let endpoint = endpoints
                    .iter()
                    .find(|e| systeme::points_at(&webhook.url, &e.token))
                    .cloned();
                (webhook, endpoint)
            })
            .collect())
    }

    /// Points this endpoint's systeme.io Settings webhook at its current public URL
    /// (created with a fresh secret, stored on the endpoint, when there is none).
    pub async fn register(
        &self,
        endpoint_id: String,
        events: Option<Vec<String>>,
    ) -> Result<Registration> {
        let _one_at_a_time = self.registering.lock().await;
        let (key, endpoint) = self
            .store
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
        let base = self.public.public_base().ok_or_else(|| {
            Error::Invalid("no public URL yet: start a tunnel (cloudflared or ngrok) first".into())
        })?;
        let secrets = EndpointSecret {
            store: &self.store,
            endpoint: endpoint.id.clone(),
        };
        systeme::register_endpoint(
            self.api_base.as_deref(),
            &key,
            &endpoint,
            &base,
            events,
            &secrets,
        )
        .await
    }
}
