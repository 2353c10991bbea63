//! ngrok, in-process through the official `ngrok` crate: an HTTPS URL on ngrok's
//! domains (or the user's reserved one). Needs the user's authtoken.

use std::net::SocketAddr;
use std::time::Duration;

use ngrok::Session;
use ngrok::config::ForwarderBuilder;
use ngrok::session::ConnectError;
use ngrok::tunnel::{EndpointInfo, TunnelCloser};
use tokio_util::sync::CancellationToken;

use super::{Ended, Report, TunnelOptions};

/// ngrok's session connect has no deadline of its own.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

const TOKEN_HINT: &str = "copy your authtoken from https://dashboard.ngrok.com/get-started/your-authtoken into Tunnel… (or set NGROK_AUTHTOKEN), or pick another tunnel";

pub(super) async fn run(
    domain: Option<&str>,
    options: &TunnelOptions,
    target: SocketAddr,
    report: &mut Report<'_>,
    stop: &CancellationToken,
) -> Ended {
    let Some(authtoken) = options
        .ngrok_authtoken
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    else {
        return Ended::Failed {
            reason: "ngrok needs your authtoken".into(),
            hint: TOKEN_HINT.into(),
        };
    };
    let mut builder = Session::builder();
    builder.authtoken(authtoken);
    if let Some(server) = &options.ngrok_server
        && let Err(error) = builder.server_addr(server.as_str())
    {
        return Ended::Failed {
            reason: format!("the ngrok server address {server:?} is not valid: {error}"),
            hint: "fix HOOKSCOPE_NGROK_SERVER or unset it".into(),
        };
    }
    let session = tokio::select! {
        _ = stop.cancelled() => return Ended::Stopped,
        connected = tokio::time::timeout(CONNECT_TIMEOUT, builder.connect()) => match connected {
            Err(_) => return Ended::Lost(format!(
                "no answer from ngrok within {} s (is this machine online?)",
                CONNECT_TIMEOUT.as_secs()
            )),
            Ok(Err(error)) => return refused(error),
            Ok(Ok(session)) => session,
        },
    };
    let mut endpoint = session.http_endpoint();
    if let Some(domain) = domain {
        endpoint.domain(domain);
    }
    let local = url::Url::parse(&format!("http://{target}")).expect("a socket address makes a URL");
    let mut forwarder = tokio::select! {
        _ = stop.cancelled() => return Ended::Stopped,
        listening = endpoint.listen_and_forward(local) => match listening {
            Ok(forwarder) => forwarder,
            Err(error) => {
                return Ended::Failed {
                    reason: format!("ngrok refused the endpoint: {}", chain(&error)),
                    hint: "check that the domain is reserved on your ngrok account, or leave it empty".into(),
                };
            }
        },
    };
    report.up(forwarder.url());
    tokio::select! {
        _ = stop.cancelled() => {
            let _ = forwarder.close().await;
            Ended::Stopped
        }
        ended = forwarder.join() => Ended::Lost(match ended {
            Ok(Ok(())) => "ngrok stopped forwarding".to_string(),
            Ok(Err(error)) => format!("ngrok stopped forwarding: {error}"),
            Err(error) => format!("ngrok stopped forwarding: {error}"),
        }),
    }
}

/// A refused authtoken will not get better by retrying; a network problem may.
fn refused(error: ConnectError) -> Ended {
    match &error {
        ConnectError::Auth(_) => {
            let code = ngrok::Error::error_code(&error)
                .map(|code| format!(" ({code})"))
                .unwrap_or_default();
            Ended::Failed {
                reason: format!("ngrok refused the authtoken{code}: {}", chain(&error)),
                hint: TOKEN_HINT.into(),
            }
        }
        _ => Ended::Lost(format!("cannot reach ngrok: {}", chain(&error))),
    }
}

/// An error and its causes on one line.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}
