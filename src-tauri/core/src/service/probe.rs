//! "Is it reaching me?": a probe sent through the public URL (the tunnel's, or the one the
//! user gave) that must arrive at this Hookscope's own ingest listener. A probe carries a
//! one-time nonce on `/.hookscope/probe/{nonce}`; the listener answers it and tells this
//! service, and nothing stores or forwards it. An answer without that word from the
//! listener (another server behind an old URL, a captive page) is a failure too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::timefmt::{format_micros, now_micros};
use crate::tokens;

use super::public::PublicUrls;

/// The path a probe is sent to, under the public base URL.
pub const PROBE_PATH: &str = "/.hookscope/probe/";

/// How often, and how patiently, the public URL is checked.
#[derive(Debug, Clone, Copy)]
pub struct ProbeTiming {
    /// Between two checks while a public URL is set.
    pub every: Duration,
    /// Longest wait for the probe to come back.
    pub timeout: Duration,
    /// A failed check is made once more after this wait before it is reported (a new
    /// tunnel's name takes a moment to resolve everywhere).
    pub confirm_after: Duration,
}

impl Default for ProbeTiming {
    fn default() -> Self {
        ProbeTiming {
            every: Duration::from_secs(300),
            timeout: Duration::from_secs(10),
            confirm_after: Duration::from_secs(15),
        }
    }
}

/// The last check of the public URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct ProbeView {
    /// The probe came back to this Hookscope's listener.
    pub reaches: bool,
    /// The public base URL checked.
    pub url: String,
    pub checked_at: String,
    /// From sending the probe to its answer.
    pub duration_ms: i64,
    /// Why it did not reach, or null.
    pub error: Option<String>,
    /// What to do about it, or null.
    pub advice: Option<String>,
}

pub struct Probe {
    public: Arc<PublicUrls>,
    timing: ProbeTiming,
    client: reqwest::Client,
    /// Nonces sent and not yet seen, with who waits for them.
    pending: Mutex<HashMap<String, oneshot::Sender<()>>>,
    last: watch::Sender<Option<ProbeView>>,
    /// One probe in flight at a time.
    checking: tokio::sync::Mutex<()>,
}

impl Probe {
    pub fn new(public: Arc<PublicUrls>, timing: ProbeTiming) -> Probe {
        let client = reqwest::Client::builder()
            .timeout(timing.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Probe {
            public,
            timing,
            client,
            pending: Mutex::new(HashMap::new()),
            last: watch::channel(None).0,
            checking: tokio::sync::Mutex::new(()),
        }
    }

    /// The last check, or `None` when there is no public URL (or none checked yet).
    pub fn last(&self) -> Option<ProbeView> {
        self.last.borrow().clone()
    }

    pub fn watch(&self) -> watch::Receiver<Option<ProbeView>> {
        self.last.subscribe()
    }

    /// The ingest listener saw `nonce`: true if it is one this service sent and waits
    /// for (each is believed once).
    pub fn arrived(&self, nonce: &str) -> bool {
        let waiting = self.pending.lock().expect("probe nonces").remove(nonce);
        match waiting {
            Some(tell) => {
                let _ = tell.send(());
                true
            }
            None => false,
        }
    }

    /// Checks the public URL now (a failure once more after `confirm_after` when
    /// `confirm`), publishes and returns the result; `None` without a public URL.
    pub async fn check(&self, confirm: bool) -> Option<ProbeView> {
        let Some(base) = self.public.public_base() else {
            self.last.send_replace(None);
            return None;
        };
        let mut view = self.send_one(&base).await;
        if !view.reaches && confirm {
            // Not held while waiting: a check asked for meanwhile goes ahead.
            tokio::time::sleep(self.timing.confirm_after).await;
            if self.public.public_base().as_deref() != Some(base.as_str()) {
                return self.last();
            }
            view = self.send_one(&base).await;
        }
        match (&view.error, view.reaches) {
            (Some(error), false) => {
                tracing::warn!(url = %base, %error, "the public URL does not reach this Hookscope")
            }
            _ => {
                tracing::info!(url = %base, ms = view.duration_ms, "the public URL reaches this Hookscope")
            }
        }
        self.last.send_replace(Some(view.clone()));
        Some(view)
    }

    async fn send_one(&self, base: &str) -> ProbeView {
        let _one_at_a_time = self.checking.lock().await;
        let nonce = tokens::random_hex(16);
        let (told, arrival) = oneshot::channel();
        self.pending
            .lock()
            .expect("probe nonces")
            .insert(nonce.clone(), told);
        let started = Instant::now();
        let url = format!("{}{PROBE_PATH}{nonce}", base.trim_end_matches('/'));
        let answer = self.client.post(&url).body("").send().await;
        let duration_ms = started.elapsed().as_millis() as i64;
        // Told before the listener answers, so a 200 from ours has set it already.
        let came_back = tokio::time::timeout(Duration::from_millis(200), arrival)
            .await
            .is_ok_and(|told| told.is_ok());
        self.pending.lock().expect("probe nonces").remove(&nonce);
        let provider = self.public.tunnels.status().provider;
        let (error, advice) = match answer {
            Ok(answer) if came_back && answer.status().is_success() => (None, None),
            Ok(answer) if came_back => (
                Some(format!(
                    "the probe reached this Hookscope but the answer came back as {}",
                    answer.status()
                )),
                Some("Something between the public URL and Hookscope changes answers: check your proxy's rules.".to_string()),
            ),
            Ok(answer) => (
                Some(format!(
                    "{base} answered {} but the probe never reached this Hookscope",
                    answer.status()
                )),
                Some(advice_for(provider, true)),
            ),
            Err(error) => (
                Some(format!(
                    "{base} could not be reached: {}",
                    describe(error, self.timing.timeout)
                )),
                Some(advice_for(provider, false)),
            ),
        };
        ProbeView {
            reaches: error.is_none(),
            url: base.to_string(),
            checked_at: format_micros(now_micros()),
            duration_ms,
            error,
            advice,
        }
    }
}

fn describe(error: reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        format!("no answer within {} s", timeout.as_secs())
    } else if error.is_connect() {
        "the connection was refused or failed".into()
    } else {
        error.without_url().to_string()
    }
}

fn advice_for(provider: &str, answered_by_another: bool) -> String {
    match (provider, answered_by_another) {
        ("manual", true) => "Your public URL leads to another server: point your proxy or tunnel at Hookscope's proxy listener (--proxy), or correct the URL in Tunnel.".into(),
        ("manual", false) => "Check that your tunnel or reverse proxy runs and points at Hookscope's proxy listener (--proxy), and that the URL in Tunnel is right.".into(),
        (_, true) => "The tunnel's URL leads to another server: restart the tunnel from the header and update systeme.io with the new URL.".into(),
        (_, false) => "The tunnel is not carrying deliveries: restart it from the header (Tunnel), check this machine's connection, and update systeme.io if the URL changed.".into(),
    }
}

/// Checks the public URL every `timing.every` while there is one, and at once when it
/// changes; says at once when there is none any more; stops with `shutdown`.
pub async fn run(probe: Arc<Probe>, shutdown: CancellationToken) {
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = check_now_and_then(&probe) => {}
        _ = forget_a_gone_url(&probe) => {}
    }
}

async fn check_now_and_then(probe: &Probe) {
    let mut tunnel = probe.public.tunnels.subscribe();
    let mut checked_base: Option<String> = None;
    let mut next = tokio::time::Instant::now();
    loop {
        let base = probe.public.public_base();
        let changed = base != checked_base;
        if changed || tokio::time::Instant::now() >= next {
            checked_base = base.clone();
            probe.check(true).await;
            next = tokio::time::Instant::now() + probe.timing.every;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            changed = tunnel.changed() => if changed.is_err() { return },
        }
    }
}

/// A check may be waiting to confirm a failure: once there is no public URL at all, the
/// last verdict is withdrawn without waiting for it. (A URL changed for another keeps its
/// verdict, which names the URL, until the new one is checked.)
async fn forget_a_gone_url(probe: &Probe) {
    let mut tunnel = probe.public.tunnels.subscribe();
    while tunnel.changed().await.is_ok() {
        if probe.public.public_base().is_none() && probe.last().is_some() {
            probe.last.send_replace(None);
        }
    }
}
