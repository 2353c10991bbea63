//! `hookscope send`: rehearse a funnel without systeme.io by posting fixture deliveries
//! with their exact bytes and headers.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;

#[derive(Args)]
pub struct SendArgs {
    /// Body files (a `NAME.headers` file beside `NAME.EXT` gives its headers) or folders
    /// of them
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// The webhook URL to post to
    #[arg(long, value_name = "URL")]
    to: String,
    /// HTTP method
    #[arg(long, default_value = "POST")]
    method: String,
    /// Extra header, `Name: value` (repeatable); overrides the fixture's
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    headers: Vec<String>,
    /// Change a JSON field before sending, `path=value` (repeatable; the value is JSON when
    /// it parses as JSON): makes a new message from the sample
    #[arg(long = "set", value_name = "PATH=VALUE")]
    set: Vec<String>,
    /// The contact's email, wherever this delivery keeps it
    #[arg(long)]
    email: Option<String>,
    /// The tag's name (tag events)
    #[arg(long)]
    tag: Option<String>,
    /// The amount in cents (sales)
    #[arg(long)]
    amount: Option<i64>,
    /// Sign signed deliveries with this secret [default: the endpoint's, when the data
    /// directory has one for the URL's token]
    #[arg(long, env = "HOOKSCOPE_SECRET", hide_env_values = true)]
    secret: Option<String>,
}

/// The secret of the endpoint `url` points at, when this machine's data directory has it.
fn endpoint_secret(url: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).ok()?;
    let token = url
        .path()
        .strip_prefix("/h/")?
        .split('/')
        .next()?
        .to_string();
    let dir = match std::env::var_os("HOOKSCOPE_DATA_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => hookscope_core::app::default_data_dir().ok()?,
    };
    let path = hookscope_core::store::db::database_path(&dir);
    if !path.exists() {
        return None;
    }
    let conn = hookscope_core::store::db::open_reader(&path).ok()?;
    hookscope_core::store::endpoints::list(&conn)
        .ok()?
        .into_iter()
        .find(|e| e.token == token)?
        .secret
}

/// A body to send and the headers that go with it.
struct Delivery {
    body_path: PathBuf,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
}

fn is_headers_file(path: &Path) -> bool {
    path.extension().is_some_and(|ext| ext == "headers")
}

/// `NAME.headers` beside `NAME.EXT` (also `NAME.EXT.headers`).
fn headers_for(body: &Path) -> Option<PathBuf> {
    [body.with_extension("headers"), {
        let mut p = body.as_os_str().to_owned();
        p.push(".headers");
        PathBuf::from(p)
    }]
    .into_iter()
    .find(|p| p.is_file())
}

fn load(body_path: &Path, extra: &[(String, String)]) -> Result<Delivery> {
    let body =
        std::fs::read(body_path).with_context(|| format!("cannot read {}", body_path.display()))?;
    let mut headers = Vec::new();
    if let Some(path) = headers_for(body_path) {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let header = hookscope_core::capture::headers_file::parse_line(line)
                .with_context(|| format!("{}:{}: expected `Name: value`", path.display(), n + 1))?;
            headers.push(header);
        }
    }
    for (name, value) in extra {
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        headers.push((name.clone(), value.clone()));
    }
    Ok(Delivery {
        body_path: body_path.to_path_buf(),
        body,
        headers,
    })
}

fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot list {}", path.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && !is_headers_file(p))
                .filter(|p| p.extension().is_none_or(|ext| ext != "py"))
                .collect();
            inside.sort();
            files.extend(inside);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

pub fn run(args: SendArgs) -> Result<()> {
    let extra = args
        .headers
        .iter()
        .map(|h| {
            hookscope_core::capture::headers_file::parse_line(h)
                .with_context(|| format!("-H {h:?}: expected `Name: value`"))
        })
        .collect::<Result<Vec<_>>>()?;
    let method: reqwest::Method = args
        .method
        .parse()
        .with_context(|| format!("{:?} is not an HTTP method", args.method))?;
    let overrides = hookscope_core::delivery::synth::Overrides {
        email: args.email.clone(),
        tag: args.tag.clone(),
        amount: args.amount,
        set: args
            .set
            .iter()
            .map(|s| hookscope_core::delivery::synth::parse_assignment(s))
            .collect::<hookscope_core::Result<_>>()?,
    };
    let secret = args.secret.clone().or_else(|| endpoint_secret(&args.to));
    let mut deliveries = expand(&args.files)?
        .iter()
        .map(|path| load(path, &extra))
        .collect::<Result<Vec<_>>>()?;
    if !overrides.is_empty() || args.secret.is_some() {
        for delivery in &mut deliveries {
            let (headers, body) = hookscope_core::delivery::synth::build(
                std::mem::take(&mut delivery.headers),
                &delivery.body,
                &overrides,
                secret.as_deref(),
            )
            .with_context(|| format!("{}", delivery.body_path.display()))?;
            delivery.headers = headers;
            delivery.body = body;
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let failures = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .user_agent(concat!("hookscope/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let mut failures = 0;
        for delivery in deliveries {
            let mut request = client.request(method.clone(), &args.to).body(delivery.body);
            for (name, value) in &delivery.headers {
                request = request.header(name, value);
            }
            let started = Instant::now();
            match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    println!(
                        "{} → {} ({} ms)",
                        delivery.body_path.display(),
                        status,
                        started.elapsed().as_millis()
                    );
                    if !status.is_success() {
                        failures += 1;
                    }
                }
                Err(error) => {
                    println!("{} → failed: {error}", delivery.body_path.display());
                    failures += 1;
                }
            }
        }
        anyhow::Ok(failures)
    })?;
    if failures > 0 {
        bail!("{failures} deliveries were not accepted");
    }
    Ok(())
}
