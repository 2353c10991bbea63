//! `hookscope diff` as a user runs it, beside a running Hookscope (a read): the terminal
//! text and `--json`, two ids or one (compared with the event before it).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support;

use support::{BIN, Serve, fixtures};

fn hookscope(args: &[&str], data_dir: &Path) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env("HOOKSCOPE_DATA_DIR", data_dir)
        .output()
        .expect("hookscope runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_prints_paths_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let mut serve = Serve::start(dir.path());
    let settings = fixtures().join("systeme-settings");
    let sent = hookscope(
        &[
            "send",
            settings.join("sale-new.json").to_str().unwrap(),
            settings.join("sale-new-discounted.json").to_str().unwrap(),
            "--to",
            &serve.webhook_url,
        ],
        dir.path(),
    );
    assert!(sent.status.success(), "{sent:?}");
    let page = serve.api_json("/api/events?type=SALE_NEW").await;
    let ids: Vec<String> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    // Newest first.
    let [discounted, full] = ids.as_slice() else {
        panic!("two sales: {page}")
    };

    let printed = hookscope(&["diff", full, discounted], dir.path());
    let text = String::from_utf8_lossy(&printed.stdout);
    assert!(printed.status.success(), "{printed:?}");
    for line in [
        "  ~ order.totalPrice: 4700 → 2700",
        "  - customer.fields.country: \"FR\"",
        "  + customer.fields.postcode: \"75011\"",
        "  ~ orderItem.id: 8881001 → 8881002",
        "  10 paths differ, 32 values unchanged",
        "  ~ content-length: 1033 → 1223",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line:?} is printed:\n{text}"
        );
    }
    assert!(
        !text.contains("statementDescriptor"),
        "unchanged paths are counted, not printed:\n{text}"
    );
    assert!(!text.contains('\u{1b}'), "no colour written to a pipe");

    let as_json = hookscope(&["diff", full, discounted, "--json"], dir.path());
    assert!(as_json.status.success(), "{as_json:?}");
    let printed: Value = serde_json::from_slice(&as_json.stdout).expect("--json prints JSON");
    let answered = serve
        .api_json(&format!("/api/diff?a={full}&b={discounted}"))
        .await;
    assert_eq!(printed, answered, "--json prints what the API answers");
    assert_eq!(printed["body"]["diff"]["kind"], "json");

    // One id: compared with the event before it (the previous sale).
    let previous = hookscope(&["diff", discounted], dir.path());
    let text = String::from_utf8_lossy(&previous.stdout);
    assert!(previous.status.success(), "{previous:?}");
    assert!(
        text.starts_with(&format!("a: {full}")),
        "a is the earlier sale:\n{text}"
    );
    assert!(
        text.contains("(a is the previous event of b's type)"),
        "{text}"
    );
    assert!(text.contains("~ order.totalPrice: 4700 → 2700"), "{text}");

    let unknown = hookscope(&["diff", full, "no-such-event"], dir.path());
    assert!(!unknown.status.success());
    let said = String::from_utf8_lossy(&unknown.stderr);
    assert!(said.contains("no event no-such-event"), "{said}");
    let nothing_before = hookscope(&["diff", full], dir.path());
    assert!(!nothing_before.status.success());
    assert!(
        String::from_utf8_lossy(&nothing_before.stderr).contains("no SALE_NEW event before"),
        "{nothing_before:?}"
    );

    serve.signal("TERM");
    assert!(serve.wait(Duration::from_secs(15)).success());
}
