//! Tunnels against real local peers: a real bore server on loopback (the `bore-cli`
//! crate's), and a stand-in cloudflared (this test binary, re-run as a process) serving
//! the metrics endpoints that Hookscope reads. A real quick tunnel or bore.pub needs the
//! internet, which these tests do without.

use crate::support;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hookscope_core::Running;
use hookscope_core::app::{self, ServeOptions};
use hookscope_core::tunnel::{TunnelChoice, TunnelOptions, TunnelState, TunnelStatus};
use support::{Api, fixture, test_options};

const WAIT: Duration = Duration::from_secs(40);

async fn wait_for(
    running: &Running,
    what: &str,
    done: impl Fn(&TunnelStatus) -> bool,
) -> TunnelStatus {
    let mut status = running.state.public.tunnels.subscribe();
    match tokio::time::timeout(WAIT, status.wait_for(|s| done(s))).await {
        Ok(Ok(status)) => status.clone(),
        _ => panic!(
            "tunnel never {what}; last status: {:?}",
            running.state.public.tunnels.status()
        ),
    }
}

async fn start(data_dir: &Path, tunnel: TunnelChoice, tunnel_options: TunnelOptions) -> Running {
    app::start(ServeOptions {
        tunnel: Some(tunnel),
        tunnel_options,
        ..test_options(data_dir)
    })
    .await
    .expect("the server starts")
}

// ---- bore -----------------------------------------------------------------------------

/// A bore server on 127.0.0.1 (its control port is bore's fixed 7835), on a runtime of its
/// own: shutting that runtime down kills the server and every connection it holds.
fn bore_server() -> tokio::runtime::Runtime {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.spawn(async move {
        // A server stopped a moment ago may still hold the port while its runtime winds down.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let mut server = bore_cli::server::Server::new(20000..=29999, None);
            server.set_bind_addr(IpAddr::V4(Ipv4Addr::LOCALHOST));
            server.set_bind_tunnels(IpAddr::V4(Ipv4Addr::LOCALHOST));
            let Err(error) = server.listen().await else {
                return;
            };
            if tokio::time::Instant::now() > deadline {
                panic!("the bore server could not listen on 127.0.0.1:7835: {error:#}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    runtime
}

/// Stops a bore server and waits until its port and connections are closed.
async fn stop_bore_server(runtime: tokio::runtime::Runtime) {
    tokio::task::spawn_blocking(move || runtime.shutdown_timeout(Duration::from_secs(5)))
        .await
        .unwrap();
}

/// Posts `body` claiming to be forwarded for `forwarded_for`; returns the stored event id.
async fn post(
    http: &reqwest::Client,
    url: &str,
    forwarded_for: &str,
    body: &[u8],
    headers: &[(String, String)],
) -> String {
    let mut request = http
        .post(url)
        .header("x-forwarded-for", forwarded_for)
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "{url} acknowledges");
    let ack: serde_json::Value = response.json().await.unwrap();
    ack["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bore_carries_deliveries_and_recovers_when_its_server_returns() {
    let bore = bore_server();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let dir = tempfile::tempdir().unwrap();
    let running = start(
        dir.path(),
        "bore:127.0.0.1".parse().unwrap(),
        TunnelOptions::default(),
    )
    .await;
    let api = Api::of(&running);

    let up = wait_for(&running, "came up", |s| s.state == TunnelState::Up).await;
    let public = up.public_url.clone().unwrap();
    assert!(public.starts_with("http://127.0.0.1:"), "{public}");
    assert_ne!(
        public,
        format!("http://{}", running.ingest_addr),
        "a port of the bore server"
    );
    let tunnel = api.json("/api/tunnel").await;
    assert_eq!(tunnel["state"], "up");
    assert_eq!(tunnel["insecure"], true, "bore is plain HTTP: the UI warns");
    let webhook = tunnel["webhook_url"].as_str().unwrap().to_string();
    let token = running.webhook_url.rsplit('/').next().unwrap();
    assert_eq!(webhook, format!("{public}/h/{token}"));
    let endpoints = api.json("/api/endpoints").await;
    assert_eq!(endpoints["endpoints"][0]["public_url"], webhook.as_str());

    // Through the tunnel: stored. bore carries plain TCP and reports no sender, so
    // forwarding headers are the client's own say: not believed.
    let http = reqwest::Client::new();
    let sale = fixture("systeme-automation/sale-completed");
    let mut claims = sale.headers.clone();
    claims.push(("cf-connecting-ip".into(), "185.236.142.2".into()));
    let id = post(&http, &webhook, "185.236.142.2", &sale.body, &claims).await;
    let event = api.json(&format!("/api/events/{id}")).await;
    assert_eq!(
        event["body"],
        serde_json::from_slice::<serde_json::Value>(&sale.body).unwrap()
    );
    assert_eq!(event["via_tunnel"], true);
    assert_eq!(event["client_ip"], "127.0.0.1");
    assert_eq!(event["sender"], "unknown");
    let outsider_id = post(
        &http,
        &webhook,
        "203.0.113.9",
        br#"{"email":"who@example.com"}"#,
        &[],
    )
    .await;
    let event = api.json(&format!("/api/events/{outsider_id}")).await;
    assert_eq!(event["sender"], "unknown");

    // The direct listener does not believe forwarding headers.
    let direct_id = post(&http, &running.webhook_url, "185.236.142.2", b"{}", &[]).await;
    let event = api.json(&format!("/api/events/{direct_id}")).await;
    assert_eq!(event["via_tunnel"], false);
    assert_eq!(event["client_ip"], "127.0.0.1");
    assert_eq!(event["sender"], "local");
    let contact = api.json("/api/events?email=who@example.com").await;
    assert_eq!(
        contact["events"].as_array().unwrap().len(),
        1,
        "the delivery is kept"
    );

    // The server dies: the tunnel says so, then comes back when the server does.
    stop_bore_server(bore).await;
    let lost = wait_for(&running, "noticed the lost server", |s| {
        s.state == TunnelState::Reconnecting
    })
    .await;
    assert!(
        lost.reason.as_deref().unwrap_or("").contains("bore server"),
        "{lost:?}"
    );
    let bore = bore_server();
    let back = wait_for(&running, "came back", |s| s.state == TunnelState::Up).await;
    let new_public = back.public_url.clone().unwrap();
    // Announced exactly when the bore server gave the tunnel another port.
    let expected_previous = (new_public != public).then(|| public.clone());
    assert_eq!(
        back.previous_url, expected_previous,
        "a changed URL is announced"
    );
    let after = http
        .post(format!("{new_public}/h/{token}"))
        .body("{\"email\":\"after@example.com\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 200);
    let found = api.json("/api/events?email=after@example.com").await;
    assert_eq!(found["events"].as_array().unwrap().len(), 1);

    running.stop().await;
    stop_bore_server(bore).await;
}

/// One request on a kept-alive connection, claiming to be forwarded for `forwarded_for`;
/// returns the stored event id.
async fn post_on(stream: &mut tokio::net::TcpStream, token: &str, forwarded_for: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = format!(
        "POST /h/{token} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-For: {forwarded_for}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).await.unwrap(),
            1,
            "the answer's head"
        );
        answer.push(byte[0]);
    }
    let head = String::from_utf8(answer).unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().unwrap())
        })
        .expect("a sized answer");
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.unwrap();
    let ack: serde_json::Value = serde_json::from_slice(&body).unwrap();
    ack["id"].as_str().unwrap().to_string()
}

/// What a tunnel reports is fixed when its connection is accepted: a connection opened
/// through bore keeps bore's word (none) after a switch to a tunnel whose header counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_keeps_what_the_tunnel_it_came_through_reports() {
    let dir = tempfile::tempdir().unwrap();
    // No bore server there: bore keeps retrying, and it is the tunnel chosen.
    let running = start(
        dir.path(),
        "bore:127.0.0.2".parse().unwrap(),
        TunnelOptions::default(),
    )
    .await;
    let api = Api::of(&running);
    let sender_of = |id: String| {
        let api = &api;
        async move { api.json(&format!("/api/events/{id}")).await["sender"].clone() }
    };
    let token = running.webhook_url.rsplit('/').next().unwrap().to_string();
    let target = running.state.public.tunnels.target();
    let mut through_bore = tokio::net::TcpStream::connect(target).await.unwrap();
    let id = post_on(&mut through_bore, &token, "185.236.142.1").await;
    assert_eq!(sender_of(id).await, "unknown");

    running
        .state
        .public
        .choose("ngrok".parse().unwrap(), None)
        .await
        .unwrap();
    wait_for(&running, "switched to ngrok", |s| s.provider == "ngrok").await;
    let id = post_on(&mut through_bore, &token, "185.236.142.1").await;
    assert_eq!(
        sender_of(id).await,
        "unknown",
        "the connection opened through bore is not believed after the switch"
    );
    let mut through_ngrok = tokio::net::TcpStream::connect(target).await.unwrap();
    let id = post_on(&mut through_ngrok, &token, "203.0.113.9, 185.236.142.1").await;
    assert_eq!(
        sender_of(id).await,
        "systeme.io",
        "behind ngrok, the entry ngrok appends counts"
    );
    running.stop().await;
}

// ---- a tunnel or proxy of your own ---------------------------------------------------

#[tokio::test]
async fn a_proxy_of_your_own_reports_the_sender_it_appends() {
    let dir = tempfile::tempdir().unwrap();
    let running = app::start(ServeOptions {
        proxy: Some("127.0.0.1:0".parse().unwrap()),
        tunnel: Some("manual:https://hooks.example.com".parse().unwrap()),
        ..support::test_options(dir.path())
    })
    .await
    .expect("the server starts");
    let api = Api::of(&running);
    let proxy = running.proxy_addr.expect("the proxy listener's address");
    assert!(proxy.ip().is_loopback(), "{proxy}");
    assert_ne!(proxy, running.ingest_addr);
    assert_ne!(
        proxy,
        running.state.public.tunnels.target(),
        "not our tunnel's listener"
    );
    let token = running.webhook_url.rsplit('/').next().unwrap();
    let through_proxy = format!("http://{proxy}/h/{token}");
    let http = reqwest::Client::new();
    let sale = fixture("systeme-automation/sale-completed");

    // The sender the proxy reports is believed and checked.
    let id = post(
        &http,
        &through_proxy,
        "185.236.142.3",
        &sale.body,
        &sale.headers,
    )
    .await;
    let event = api.json(&format!("/api/events/{id}")).await;
    assert_eq!(event["via_tunnel"], true);
    assert_eq!(event["client_ip"], "185.236.142.3");
    assert_eq!(event["sender"], "systeme.io");
    let id = post(&http, &through_proxy, "10.0.0.7, 203.0.113.9", b"{}", &[]).await;
    let event = api.json(&format!("/api/events/{id}")).await;
    assert_eq!(event["client_ip"], "203.0.113.9", "the hop the proxy added");
    assert_eq!(event["sender"], "outside");
    // Most proxies pass Cf-Connecting-IP on as a client wrote it: not believed here.
    let spoofed = [("cf-connecting-ip".to_string(), "185.236.142.1".to_string())];
    let id = post(&http, &through_proxy, "203.0.113.9", b"{}", &spoofed).await;
    let event = api.json(&format!("/api/events/{id}")).await;
    assert_eq!(event["client_ip"], "203.0.113.9");
    assert_eq!(event["sender"], "outside");
    // The public listener still ignores what a client claims.
    let id = post(&http, &running.webhook_url, "185.236.142.3", b"{}", &[]).await;
    let event = api.json(&format!("/api/events/{id}")).await;
    assert_eq!(event["sender"], "local");
    running.stop().await;

    // Believing forwarding headers is only safe where only this machine connects, and the
    // proxy listener cannot be the public one.
    let shared = app::start(ServeOptions {
        proxy: Some("127.0.0.1:47470".parse().unwrap()),
        ingest: "127.0.0.1:47470".parse().unwrap(),
        ..support::test_options(dir.path())
    })
    .await
    .err()
    .expect("a proxy listener on the webhook address is refused");
    assert!(shared.to_string().contains("a port of its own"), "{shared}");
    let refused = app::start(ServeOptions {
        proxy: Some("0.0.0.0:0".parse().unwrap()),
        ..support::test_options(dir.path())
    })
    .await
    .err()
    .expect("a proxy listener open to the network is refused");
    assert!(
        refused.to_string().contains("not a loopback address"),
        "{refused}"
    );
}

// ---- cloudflared ----------------------------------------------------------------------

/// Set in the stand-in process: what it should do and where to report.
const STAND_IN_DIR: &str = "HOOKSCOPE_STAND_IN_DIR";
const STAND_IN_MODE: &str = "HOOKSCOPE_STAND_IN_MODE";
const STAND_IN_ARGS: &str = "HOOKSCOPE_STAND_IN_ARGS";

/// A `cloudflared` on disk: a script that re-runs this test binary as the stand-in.
fn stand_in(dir: &Path, mode: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let exe = std::env::current_exe().unwrap();
    let script = dir.join("cloudflared");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nexport {STAND_IN_ARGS}=\"$*\" {STAND_IN_DIR}='{}' {STAND_IN_MODE}='{mode}'\nexec '{}' --exact tunnels::cloudflared_stand_in --ignored --nocapture --test-threads=1\n",
            dir.display(),
            exe.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// The stand-in cloudflared: serves `/ready` (503 at first, then 200) and `/quicktunnel`
/// on the `--metrics` address, names its tunnel after its pid, and in `crash` mode exits
/// under three seconds after it is ready. Only runs when started by [`stand_in`].
#[test]
#[ignore = "the cloudflared stand-in process, started by the cloudflared tests"]
fn cloudflared_stand_in() {
    let (Ok(dir), Ok(mode), Ok(args)) = (
        std::env::var(STAND_IN_DIR),
        std::env::var(STAND_IN_MODE),
        std::env::var(STAND_IN_ARGS),
    ) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let pid = std::process::id();
    std::fs::write(dir.join(format!("started-{pid}")), &args).unwrap();
    let words: Vec<&str> = args.split_whitespace().collect();
    let metrics = words[words.iter().position(|w| *w == "--metrics").unwrap() + 1].to_string();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let born = std::time::Instant::now();
        let app = axum::Router::new()
            .route(
                "/ready",
                axum::routing::get(move || async move {
                    if born.elapsed() < Duration::from_millis(300) {
                        (
                            axum::http::StatusCode::SERVICE_UNAVAILABLE,
                            r#"{"status":503,"readyConnections":0}"#,
                        )
                    } else {
                        (
                            axum::http::StatusCode::OK,
                            r#"{"status":200,"readyConnections":1,"connectorId":"x"}"#,
                        )
                    }
                }),
            )
            .route(
                "/quicktunnel",
                axum::routing::get(move || async move {
                    format!(r#"{{"hostname":"stand-in-{pid}.trycloudflare.com"}}"#)
                }),
            );
        let listener = tokio::net::TcpListener::bind(&metrics).await.unwrap();
        let serving = axum::serve(listener, app);
        if mode == "crash" {
            tokio::select! {
                _ = serving => {}
                _ = tokio::time::sleep(Duration::from_millis(3000)) => {
                    eprintln!("ERR connection to the edge lost: stand-in crash");
                    std::process::exit(3);
                }
            }
        } else {
            serving.await.unwrap();
        }
    });
}

fn alive(pid: u32) -> bool {
    // A reaped process leaves no /proc entry; a zombie would show state Z.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| !stat.contains(") Z "))
}

fn started_pids(dir: &Path) -> Vec<(u32, String)> {
    let mut pids: Vec<(u32, String)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|entry| {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            let pid = name.strip_prefix("started-")?.parse().ok()?;
            Some((pid, std::fs::read_to_string(entry.path()).unwrap()))
        })
        .collect();
    pids.sort();
    pids
}

/// Hookscope with the stand-in as its cloudflared, which reports into `programs`.
async fn start_with_stand_in(data_dir: &Path, programs: &Path, mode: &str) -> Running {
    let options = TunnelOptions {
        cloudflared: Some(stand_in(programs, mode)),
        ..TunnelOptions::default()
    };
    start(data_dir, TunnelChoice::Cloudflared, options).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudflared_is_discovered_through_its_metrics_and_stopped_on_quit() {
    let (dir, programs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let running = start_with_stand_in(dir.path(), programs.path(), "steady").await;
    let up = wait_for(&running, "came up", |s| s.state == TunnelState::Up).await;
    let started = started_pids(programs.path());
    assert_eq!(started.len(), 1, "one cloudflared");
    let (pid, args) = &started[0];
    assert_eq!(
        up.public_url.as_deref(),
        Some(format!("https://stand-in-{pid}.trycloudflare.com").as_str())
    );
    let target = running.state.public.tunnels.target();
    assert!(
        args.starts_with(&format!(
            "tunnel --url http://{target} --metrics 127.0.0.1:"
        )) && args.ends_with(" --no-autoupdate"),
        "{args}"
    );
    assert_ne!(target, running.ui_addr, "the UI/API port is never exposed");
    let tunnel = Api::of(&running).json("/api/tunnel").await;
    assert_eq!(tunnel["insecure"], false);
    assert!(
        tunnel["webhook_url"]
            .as_str()
            .unwrap()
            .starts_with("https://stand-in-")
    );

    // What cloudflared hands on, as Cloudflare's edge writes it: Cf-Connecting-IP is the
    // edge's own (it replaces a client's); X-Forwarded-For may carry a client's claim.
    let token = running.webhook_url.rsplit('/').next().unwrap();
    let from_edge = [
        ("cf-connecting-ip".to_string(), "185.236.142.1".to_string()),
        ("cdn-loop".to_string(), "cloudflare".to_string()),
    ];
    let http = reqwest::Client::new();
    let id = post(
        &http,
        &format!("http://{target}/h/{token}"),
        "203.0.113.9",
        b"{}",
        &from_edge,
    )
    .await;
    let event = Api::of(&running).json(&format!("/api/events/{id}")).await;
    assert_eq!(event["client_ip"], "185.236.142.1");
    assert_eq!(event["sender"], "systeme.io");

    running.stop().await;
    assert!(!alive(*pid), "cloudflared is gone after quit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloudflared_that_dies_is_restarted_and_its_new_url_announced() {
    let (dir, programs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let running = start_with_stand_in(dir.path(), programs.path(), "crash").await;
    let first = wait_for(&running, "came up", |s| s.state == TunnelState::Up).await;
    let lost = wait_for(&running, "noticed the exit", |s| {
        s.state == TunnelState::Reconnecting
    })
    .await;
    let reason = lost.reason.unwrap_or_default();
    assert!(
        reason.contains("cloudflared stopped") && reason.contains("stand-in crash"),
        "{reason}"
    );
    let second = wait_for(&running, "was restarted", |s| {
        s.state == TunnelState::Up && s.public_url != first.public_url
    })
    .await;
    assert_eq!(
        second.previous_url, first.public_url,
        "systeme.io must be told the new URL"
    );
    let started = started_pids(programs.path());
    assert!(started.len() >= 2, "{started:?}");
    running.stop().await;
    for (pid, _) in started {
        assert!(!alive(pid), "cloudflared {pid} is gone");
    }
}

#[tokio::test]
async fn a_missing_cloudflared_fails_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(
        dir.path(),
        TunnelChoice::Cloudflared,
        TunnelOptions {
            cloudflared: Some("/nonexistent/cloudflared".into()),
            ..TunnelOptions::default()
        },
    )
    .await;
    let failed = wait_for(&running, "failed", |s| s.state == TunnelState::Failed).await;
    assert_eq!(failed.reason.as_deref(), Some("cloudflared not found"));
    assert!(failed.hint.unwrap().contains("install cloudflared"));
    running.stop().await;
}

// ---- choosing -------------------------------------------------------------------------

#[tokio::test]
async fn the_tunnel_is_chosen_through_the_api_and_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path(), TunnelChoice::Off, TunnelOptions::default()).await;
    let api = Api::of(&running);
    assert_eq!(api.json("/api/status").await["tunnel"]["state"], "off");
    let put = |body: &'static str| {
        api.http
            .put(format!("{}/api/tunnel", api.base))
            .bearer_auth(&api.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let refused = put(r#"{"tunnel": "teleport"}"#).await.unwrap();
    assert_eq!(refused.status(), 400);
    let error: serde_json::Value = refused.json().await.unwrap();
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("pick cloudflared"),
        "{error}"
    );
    let chosen = put(r#"{"tunnel": "manual:https://hooks.example.com/"}"#)
        .await
        .unwrap();
    assert_eq!(chosen.status(), 200);
    wait_for(&running, "came up", |s| s.state == TunnelState::Up).await;
    let token = running.webhook_url.rsplit('/').next().unwrap().to_string();
    let tunnel = api.json("/api/tunnel").await;
    assert_eq!(
        tunnel["webhook_url"],
        format!("https://hooks.example.com/h/{token}")
    );
    running.stop().await;

    // Next start without a choice: the remembered one.
    let again = app::start(ServeOptions {
        tunnel: None,
        ..test_options(dir.path())
    })
    .await
    .unwrap();
    let status = wait_for(&again, "came up again", |s| s.state == TunnelState::Up).await;
    assert_eq!(status.choice, "manual:https://hooks.example.com");
    again.stop().await;
}

// ---- ngrok ----------------------------------------------------------------------------

#[tokio::test]
async fn ngrok_without_an_authtoken_fails_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(
        dir.path(),
        "ngrok".parse().unwrap(),
        TunnelOptions::default(),
    )
    .await;
    let failed = wait_for(&running, "failed", |s| s.state == TunnelState::Failed).await;
    assert_eq!(failed.reason.as_deref(), Some("ngrok needs your authtoken"));
    assert!(failed.hint.unwrap().contains("dashboard.ngrok.com"));
    assert_eq!(
        Api::of(&running).json("/api/tunnel").await["ngrok_authtoken_set"],
        false
    );
    running.stop().await;
}

/// ngrok's service is out of reach here: a local peer that hangs up on every connection
/// stands in for it, so the token is used and the network failure is retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ngrok_keeps_its_authtoken_private_and_retries_when_unreachable() {
    let refuser = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let refuser_addr = refuser.local_addr().unwrap();
    let hangups = tokio::spawn(async move {
        let mut count = 0u32;
        while let Ok((socket, _)) = refuser.accept().await {
            drop(socket);
            count += 1;
        }
        count
    });
    let dir = tempfile::tempdir().unwrap();
    let options = TunnelOptions {
        ngrok_server: Some(refuser_addr.to_string()),
        ..TunnelOptions::default()
    };
    let running = start(dir.path(), TunnelChoice::Off, options).await;
    let api = Api::of(&running);
    let secret = "2abcSECRETtokenVALUE_xyz";
    let chosen = api
        .http
        .put(format!("{}/api/tunnel", api.base))
        .bearer_auth(&api.token)
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"tunnel": "ngrok:Hooks.ngrok.app", "ngrok_authtoken": "{secret}"}}"#
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(chosen.status(), 200);
    let answer = chosen.text().await.unwrap();
    assert!(
        !answer.contains(secret),
        "the token is never sent back: {answer}"
    );
    let lost = wait_for(&running, "tried and retried", |s| {
        s.state == TunnelState::Reconnecting
    })
    .await;
    assert_eq!(lost.choice, "ngrok:hooks.ngrok.app");
    assert!(
        lost.reason
            .as_deref()
            .unwrap_or("")
            .contains("cannot reach ngrok"),
        "{lost:?}"
    );
    let tunnel = api.json("/api/tunnel").await;
    assert_eq!(tunnel["ngrok_authtoken_set"], true);
    assert!(!tunnel.to_string().contains(secret));
    let status = api.json("/api/status").await;
    assert!(!status.to_string().contains(secret));
    running.stop().await;

    // Restarted without a token on the command line: the stored one is used again.
    let again = app::start(ServeOptions {
        tunnel: None,
        tunnel_options: TunnelOptions {
            ngrok_server: Some(refuser_addr.to_string()),
            ..TunnelOptions::default()
        },
        ..test_options(dir.path())
    })
    .await
    .unwrap();
    assert_eq!(
        Api::of(&again).json("/api/tunnel").await["ngrok_authtoken_set"],
        true
    );
    wait_for(&again, "tried again", |s| {
        s.state == TunnelState::Reconnecting
    })
    .await;
    again.stop().await;
    hangups.abort();
    let database = std::fs::read(hookscope_core::store::db::database_path(dir.path())).unwrap();
    assert!(
        database
            .windows(secret.len())
            .any(|w| w == secret.as_bytes()),
        "the token is kept in the local database (settings), where the next start finds it"
    );
}
