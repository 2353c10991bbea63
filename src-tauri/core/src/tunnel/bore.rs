//! bore (github.com/ekzhang/bore), in-process through the `bore-cli` crate's client: to
//! bore.pub or the user's own server. Plain TCP, so the public URL is `http://`.

use std::net::SocketAddr;

use bore_cli::client::Client;
use tokio_util::sync::CancellationToken;

use super::{Ended, Report};

pub(super) async fn run(
    host: &str,
    target: SocketAddr,
    report: &mut Report<'_>,
    stop: &CancellationToken,
) -> Ended {
    // The same variable the bore command line reads, for servers started with a secret.
    let secret = std::env::var("BORE_SECRET").ok().filter(|s| !s.is_empty());
    let local_host = target.ip().to_string();
    let connecting = Client::new(&local_host, target.port(), host, 0, secret.as_deref());
    let client = tokio::select! {
        _ = stop.cancelled() => return Ended::Stopped,
        client = connecting => match client {
            Ok(client) => client,
            Err(error) => return Ended::Lost(format!("cannot reach the bore server {host}: {error:#}")),
        },
    };
    report.up(&format!("http://{host}:{}", client.remote_port()));
    tokio::select! {
        _ = stop.cancelled() => Ended::Stopped,
        ended = client.listen() => Ended::Lost(match ended {
            Ok(()) => format!("the bore server {host} closed the tunnel"),
            Err(error) => format!("the tunnel to {host} broke: {error:#}"),
        }),
    }
}
