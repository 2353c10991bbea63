//! A full disk: the store lives on a small tmpfs that a filler file then fills. Deliveries
//! get 503 (the sender retries), nothing acknowledged is lost, and deliveries are taken
//! again once there is room, also after a restart.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::{Api, start_server};

/// The user id, from `id -u` (no unsafe code in tests).
fn user_id() -> u32 {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// A tmpfs mounted for the test's lifetime.
struct SmallDisk {
    mount_point: tempfile::TempDir,
}

impl SmallDisk {
    /// `None` when this process may not mount (not root): the test says it was skipped.
    fn mount(size: &str) -> Option<SmallDisk> {
        let mount_point = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(mount_point.path())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then_some(SmallDisk { mount_point })
    }

    fn path(&self) -> &Path {
        self.mount_point.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.mount_point.path())
            .status();
    }
}

/// Writes zeros into `path` until the filesystem refuses.
fn fill(path: &Path) -> u64 {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match file.write(&block) {
            Ok(0) | Err(_) => break,
            Ok(n) => written += n as u64,
        }
    }
    let _ = file.sync_all();
    written
}

async fn post(http: &reqwest::Client, url: &str, text: &str) -> reqwest::Response {
    http.post(url).body(text.to_string()).send().await.unwrap()
}

/// The stored event's id from an acknowledgement.
async fn ack_id(response: reqwest::Response) -> String {
    let ack: serde_json::Value = response.json().await.unwrap();
    ack["id"].as_str().unwrap().to_string()
}

fn body(n: usize) -> String {
    // Large enough that a few dozen need fresh pages.
    let padding = "p".repeat(8_000);
    format!(
        r#"{{"type":"contact.tag.added","data":{{"tag":{{"id":{n},"name":"full disk {n}"}},"contact":{{"id":{n},"email":"disk{n}@example.com","fields":[]}}}},"padding":"{padding}"}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_with_503_keeps_what_it_acknowledged_and_recovers() {
    let Some(disk) = SmallDisk::mount("24m") else {
        // As root (as make test runs on a fresh machine) a failed mount is a failure.
        assert_ne!(
            user_id(),
            0,
            "root could not mount a tmpfs for the full-disk test"
        );
        eprintln!("SKIPPED: mounting a tmpfs needs root; the full-disk test did not run");
        return;
    };
    let data_dir: PathBuf = disk.path().join("data");
    let running = start_server(&data_dir).await;
    let http = reqwest::Client::new();
    let mut acked: Vec<(String, String)> = Vec::new();

    for n in 0..20 {
        let text = body(n);
        let response = post(&http, &running.webhook_url, &text).await;
        assert_eq!(response.status(), 200, "room left: stored");
        acked.push((ack_id(response).await, text));
    }

    // The window's live stream, read from before the disk fills until it has recovered.
    let api = Api::of(&running);
    let mut stream = api.get("/api/stream").send().await.unwrap();
    assert_eq!(stream.status(), 200);
    let heard = tokio::spawn(async move {
        let mut text = String::new();
        // Ends on the recovery (trouble told, and the last store event null) or a broken
        // stream. Keep-alive comments never let it fall silent: the caller's deadline ends
        // a wait for an event that never comes.
        while let Ok(Ok(Some(chunk))) =
            tokio::time::timeout(Duration::from_secs(30), stream.chunk()).await
        {
            text.push_str(&String::from_utf8_lossy(&chunk));
            let troubled = text.contains("event: store\ndata: {");
            let last = text
                .rsplit("event: store\ndata: ")
                .next()
                .unwrap_or_default();
            if troubled && last.starts_with("null") {
                break;
            }
        }
        text
    });

    let filler = disk.path().join("filler");
    let filled = fill(&filler);
    let mut refused = 0;
    let mut refusal = String::new();
    for n in 20..400 {
        let text = body(n);
        let response = post(&http, &running.webhook_url, &text).await;
        match response.status().as_u16() {
            200 => {
                acked.push((ack_id(response).await, text));
            }
            503 => {
                assert_eq!(
                    response.headers()["retry-after"],
                    "5",
                    "tells the sender when to retry"
                );
                refusal = response.text().await.unwrap();
                refused += 1;
            }
            other => panic!("a delivery on a full disk got {other}"),
        }
        if refused >= 20 {
            break;
        }
    }
    assert!(
        refused >= 20,
        "a full disk refuses deliveries ({refused} refused)"
    );
    assert!(
        refusal.contains("not stored"),
        "the refusal says so: {refusal}"
    );
    // The window is told, since senders only see 503s.
    let status = api.json("/api/status").await;
    let trouble = &status["store"];
    assert_eq!(trouble["code"], "disk_full", "status says why: {status}");
    assert_eq!(trouble["refused"], refused, "and how many were refused");
    assert!(
        trouble["message"].as_str().unwrap().contains("full"),
        "{trouble}"
    );
    assert!(trouble["since"].as_str().unwrap().ends_with('Z'));

    // Room again: deliveries are taken without a restart.
    std::fs::remove_file(&filler).unwrap();
    let mut recovered = false;
    for attempt in 0..50 {
        let text = body(1000 + attempt);
        let response = post(&http, &running.webhook_url, &text).await;
        if response.status() == 200 {
            acked.push((ack_id(response).await, text));
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "deliveries are taken again once there is room");
    assert_eq!(
        api.json("/api/status").await["store"],
        serde_json::Value::Null,
        "the trouble clears with the first delivery stored"
    );
    let heard = tokio::time::timeout(Duration::from_secs(60), heard)
        .await
        .expect("the stream says the store recovered")
        .unwrap();
    let told = heard
        .split("event: store\ndata: ")
        .skip(1)
        .map(|rest| rest.lines().next().unwrap_or_default())
        .collect::<Vec<_>>();
    assert_eq!(
        told.first(),
        Some(&"null"),
        "it opens with the state then: all well"
    );
    assert!(
        told.iter().any(|event| event.contains("\"disk_full\"")),
        "the stream said the disk was full: {told:?}"
    );
    assert_eq!(told.last(), Some(&"null"), "then that it recovered");
    for n in 0..10 {
        let text = body(2000 + n);
        let response = post(&http, &running.webhook_url, &text).await;
        assert_eq!(response.status(), 200);
        acked.push((ack_id(response).await, text));
    }
    running.stop().await;

    let again = start_server(&data_dir).await;
    let api = Api::of(&again);
    for (id, text) in &acked {
        let stored = api
            .get(&format!("/api/events/{id}/raw"))
            .send()
            .await
            .unwrap();
        assert_eq!(stored.status(), 200, "acknowledged delivery {id} survived");
        assert_eq!(stored.text().await.unwrap(), *text, "intact");
    }
    let listed = api.json("/api/events?limit=1000").await;
    assert_eq!(
        listed["events"].as_array().unwrap().len(),
        acked.len(),
        "only acknowledged deliveries are stored"
    );
    println!(
        "full disk: filler {} MiB, {} acknowledged before and after, {refused} refused with 503 while full",
        filled >> 20,
        acked.len()
    );
    again.stop().await;
    drop(disk);
}
