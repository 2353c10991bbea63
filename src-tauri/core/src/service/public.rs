//! Where deliveries come in: the tunnel and its public URL, the webhook URLs on this
//! machine, and the targets that would send deliveries back in (a loop).

use std::net::SocketAddr;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::store::endpoints::Endpoint;
use crate::store::settings::{self, Setting};
use crate::tunnel::{self, TunnelChoice, TunnelState, Tunnels};

use super::store::Store;

pub struct PublicUrls {
    store: Arc<Store>,
    pub tunnels: Tunnels,
    /// `http://127.0.0.1:PORT`: where webhook URLs point on this machine.
    pub ingest_base: String,
    /// `http://127.0.0.1:PORT` where a tunnel or proxy of your own connects, if asked for.
    pub proxy_base: Option<String>,
    /// The listeners deliveries arrive on (webhook, tunnel, proxy): never a forward target.
    pub webhook_listeners: Vec<SocketAddr>,
}

impl PublicUrls {
    pub fn new(
        store: Arc<Store>,
        tunnels: Tunnels,
        ingest_base: String,
        proxy_base: Option<String>,
        webhook_listeners: Vec<SocketAddr>,
    ) -> PublicUrls {
        PublicUrls {
            store,
            tunnels,
            ingest_base,
            proxy_base,
            webhook_listeners,
        }
    }

    pub fn webhook_url(&self, endpoint: &Endpoint) -> String {
        format!("{}/h/{}", self.ingest_base, endpoint.token)
    }

    /// The endpoint's URL through the tunnel, while it is up.
    pub fn public_webhook_url(&self, endpoint: &Endpoint) -> Option<String> {
        self.public_base()
            .map(|base| format!("{base}/h/{}", endpoint.token))
    }

    /// The tunnel's public URL, while it is up.
    pub fn public_base(&self) -> Option<String> {
        let status = self.tunnels.status();
        status
            .public_url
            .filter(|_| status.state == TunnelState::Up)
    }

    /// The tunnel chosen last time; on a first run cloudflared when it is installed (a
    /// quick tunnel needs no account), else none.
    pub async fn remembered(&self) -> Result<TunnelChoice> {
        let stored = self
            .store
            .read(|conn| settings::get_setting(conn, Setting::Tunnel))
            .await?;
        if let Some(choice) = stored.and_then(|text| text.parse().ok()) {
            return Ok(choice);
        }
        Ok(if tunnel::cloudflared_available(&self.tunnels.options()) {
            TunnelChoice::Cloudflared
        } else {
            TunnelChoice::Off
        })
    }

    /// Remembers `choice` and switches the running tunnel to it. A given ngrok
    /// authtoken is stored first (an empty one is forgotten).
    pub async fn choose(
        &self,
        choice: TunnelChoice,
        ngrok_authtoken: Option<String>,
    ) -> Result<()> {
        let remembered = choice.to_string();
        let (last_url, stored_token) = self
            .store
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

    /// The URL reaches one of this Hookscope's webhook listeners from this machine.
    fn on_own_listener(&self, url: &url::Url) -> bool {
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
        self.webhook_listeners.iter().any(|listener| {
            Some(listener.port()) == port
                && (local_host
                    || url.host_str().is_some_and(|host| {
                        host.trim_matches(['[', ']']) == listener.ip().to_string()
                    }))
        })
    }

    /// The URL is one of this Hookscope's webhook addresses: a listener, or the public URL
    /// itself (same scheme, host and port). Narrower than [`Self::refuse_own_url`], which
    /// refuses the tunnel's whole host.
    pub fn is_own_address(&self, target: &str) -> bool {
        let Ok(url) = url::Url::parse(target.trim()) else {
            return false;
        };
        let public = self
            .tunnels
            .status()
            .public_url
            .and_then(|public| url::Url::parse(&public).ok());
        self.on_own_listener(&url) || public.is_some_and(|public| public.origin() == url.origin())
    }

    /// Refuses a forward or replay target that is one of this Hookscope's own webhook
    /// addresses: every delivery forwarded there would come back to be forwarded again.
    /// (One that reaches it another way is caught by [`crate::store::forwards::LOOP_HEADER`].)
    pub fn refuse_own_url(&self, field: &str, target: &str) -> Result<()> {
        let Ok(url) = url::Url::parse(target.trim()) else {
            return Ok(()); // the target's own check says what is wrong with it
        };
        let on_listener = self.on_own_listener(&url);
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
}
