//! Who makes a command's change to the store. With no Hookscope on the data folder, the
//! command itself: it holds the folder's lock meanwhile, so none starts halfway through.
//! With one running, that Hookscope: the command sends the change to its API (loopback,
//! the install's token), so the store keeps one writer and the running Hookscope knows of
//! the change at once. Reads stay direct.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use hookscope_core::app::{self, announce};
use hookscope_core::exchange::export;
use hookscope_core::http::api::views::ApiErrorBody;
use hookscope_core::store::db;
use hookscope_core::store::settings::{self, Setting};
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;

/// How long a command waits for a Hookscope that holds the folder but has not said where
/// it answers yet (it is opening the store, or upgrading it).
const STARTING_AT_MOST: Duration = Duration::from_secs(20);

pub enum Changer {
    /// No Hookscope runs on the folder: this command changes the file, holding the lock.
    Here(std::fs::File),
    /// One runs: changes go through it.
    Running(RunningHookscope),
}

/// Takes the folder for this command, or finds the Hookscope that has it.
pub fn changer(data_dir: &Path) -> Result<Changer> {
    match app::lock_data_dir(data_dir) {
        Ok(lock) => Ok(Changer::Here(lock)),
        Err(hookscope_core::Error::AlreadyRunning { .. }) => {
            Ok(Changer::Running(RunningHookscope::find(data_dir)?))
        }
        Err(error) => Err(error.into()),
    }
}

/// The API of the Hookscope running on a data folder.
pub struct RunningHookscope {
    base: Url,
    token: String,
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl RunningHookscope {
    fn find(data_dir: &Path) -> Result<RunningHookscope> {
        let since = Instant::now();
        let announcement = loop {
            if let Some(found) = announce::read(data_dir)? {
                break found;
            }
            if since.elapsed() >= STARTING_AT_MOST {
                bail!(
                    "{} is in use but no Hookscope there says where it answers: another hookscope command may be changing it; try again when it has finished",
                    data_dir.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let database = crate::existing_database(data_dir)?;
        let token = settings::get_setting(&db::open_reader(&database)?, Setting::ApiToken)?
            .context("the store has no API token")?;
        Ok(RunningHookscope {
            base: Url::parse(&format!("http://{}/", announcement.ui))?,
            token,
            client: reqwest::Client::builder()
                .no_proxy()
                .build()
                .context("cannot make an HTTP client")?,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?,
        })
    }

    /// `segments` are percent-encoded here (an email address is one).
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("an http URL has a path")
            .pop_if_empty()
            .extend(segments);
        url
    }

    pub fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        self.client.request(method, url).bearer_auth(&self.token)
    }

    /// Sends a request and reads its JSON answer; an API error becomes its message.
    pub fn call<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> Result<T> {
        self.block_on(async {
            let bytes = self.answer(request).await?.bytes().await?;
            serde_json::from_slice(&bytes).context("the running Hookscope's answer")
        })
    }

    pub fn get<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<T> {
        self.call(self.request(Method::GET, self.url(segments)))
    }

    pub fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: &serde_json::Value,
    ) -> Result<T> {
        self.call(
            self.request(method, self.url(segments))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(body)?),
        )
    }

    /// Writes an answer's body (an export: personal data) to a file readable by the user
    /// only, as it arrives.
    pub fn download(&self, request: reqwest::RequestBuilder, file: &Path) -> Result<()> {
        use std::io::Write;
        self.block_on(async {
            let mut answer = self.answer(request).await?;
            let mut out = std::io::BufWriter::new(export::create_private(file)?);
            while let Some(chunk) = answer.chunk().await? {
                out.write_all(&chunk)?;
            }
            out.into_inner()
                .map_err(|e| e.into_error())?
                .sync_all()
                .with_context(|| format!("cannot write {}", file.display()))
        })
    }

    /// For work that mixes this Hookscope's API with other requests (systeme.io's).
    pub fn block_on<F: Future>(&self, work: F) -> F::Output {
        self.runtime.block_on(work)
    }

    pub async fn answer(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let answer = request.send().await.map_err(|error| {
            anyhow!(
                "Hookscope runs on this folder but does not answer at {}: {error}",
                self.base
            )
        })?;
        if answer.status().is_success() {
            return Ok(answer);
        }
        let status = answer.status();
        let body = answer.bytes().await.unwrap_or_default();
        match serde_json::from_slice::<ApiErrorBody>(&body) {
            Ok(error) => bail!("{}", error.message),
            Err(_) => bail!(
                "the running Hookscope answered {status}: {}",
                String::from_utf8_lossy(&body)
            ),
        }
    }
}
