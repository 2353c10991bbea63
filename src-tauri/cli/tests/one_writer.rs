//! One writer per store: beside a running Hookscope, the commands that change the store
//! hand their change to it. The running Hookscope no longer looks for changes made behind
//! its back, so each check below fails if a command wrote the file itself: an import
//! would never be indexed, a forget never reach the live stream, a secret or a retention
//! never reach ingest or pruning.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{BIN, Serve, a_broken_import_is_refused, fixtures, heard_on_stream};

fn run(args: &[&str], data_dir: &Path) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env("HOOKSCOPE_DATA_DIR", data_dir)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn succeeded(output: &std::process::Output) -> String {
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{said}");
    said
}

/// Three deliveries exported from another store, moved back to 2020.
async fn old_export(into: &Path) -> std::path::PathBuf {
    let source = tempfile::tempdir().unwrap();
    let serve = Serve::start(source.path());
    for fixture in ["sale-canceled", "contact-created", "contact-tag-added"] {
        let file = fixtures().join(format!("systeme-settings/{fixture}.json"));
        succeeded(&run(
            &["send", file.to_str().unwrap(), "--to", &serve.webhook_url],
            source.path(),
        ));
    }
    let events = serve.export_ndjson().await;
    assert_eq!(events.len(), 3);
    let lines: Vec<String> = events
        .into_iter()
        .enumerate()
        .map(|(i, mut event)| {
            event["received_at"] = Value::from(format!("2020-03-0{}T10:00:00Z", i + 1));
            event.to_string()
        })
        .collect();
    let file = into.join("2020.ndjson");
    std::fs::write(&file, lines.join("\n")).unwrap();
    file
}

async fn event_ids(serve: &Serve) -> Vec<String> {
    serve.api_json("/api/events").await["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

/// Waits (ten seconds at most) for `condition` over the event list.
async fn events_become(serve: &Serve, what: &str, condition: impl Fn(&[Value]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let events = serve.api_json("/api/events").await["events"]
            .as_array()
            .unwrap()
            .clone();
        if condition(&events) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {events:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_beside_a_running_hookscope_hand_their_changes_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let old = old_export(dir.path()).await;
    let serve = Serve::start(dir.path());
    let sale = fixtures().join("systeme-settings/sale-new.json");
    let send_sale = || {
        succeeded(&run(
            &["send", sale.to_str().unwrap(), "--to", &serve.webhook_url],
            dir.path(),
        ))
    };
    send_sale();

    assert_eq!(event_ids(&serve).await.len(), 1);

    // Import: stored through the running Hookscope's writer, so its indexer takes them at
    // once (the window hears of them: a command that indexed them itself would not tell
    // it) and a read made after the command holds them.
    let first_imported = serde_json::from_str::<Value>(
        std::fs::read_to_string(&old)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let told = tokio::spawn(heard_on_stream(
        serve.stream().await,
        first_imported.clone(),
        Duration::from_secs(10),
    ));
    let imported = succeeded(&run(&["import", old.to_str().unwrap()], dir.path()));
    assert!(
        imported.contains("Imported 3 events (0 already present)"),
        "{imported}"
    );
    let heard = told.await.unwrap();
    assert!(
        heard.contains("event: captured") && heard.contains(&first_imported),
        "the window hears of the import: {heard}"
    );
    assert_eq!(event_ids(&serve).await.len(), 4, "the import is indexed");
    let again = succeeded(&run(&["import", old.to_str().unwrap()], dir.path()));
    assert!(
        again.contains("Imported 0 events (3 already present)"),
        "{again}"
    );
    // The running Hookscope's refusal is shown.
    a_broken_import_is_refused(dir.path(), dir.path());

    // A secret (standard input is `endpoints`' own test): the next delivery, sent the
    // moment the command returns, is checked with it.
    succeeded(&run(
        &[
            "endpoints",
            "secret",
            "default",
            "whsec-test-0123456789abcdef",
        ],
        dir.path(),
    ));
    send_sale();
    let verdicts: Vec<String> = serve.api_json("/api/events?type=SALE_NEW").await["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["signature"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        verdicts,
        ["valid", "valid"],
        "re-checked, and the new one checked"
    );

    // A chosen answer: ingest gives it to the very next delivery.
    succeeded(&run(
        &["endpoints", "respond", "default", "--status", "202"],
        dir.path(),
    ));
    let answered = send_sale();
    assert!(
        answered.contains("202"),
        "the next delivery gets the chosen answer: {answered}"
    );
    succeeded(&run(
        &["endpoints", "respond", "default", "--clear"],
        dir.path(),
    ));
    assert!(send_sale().contains("200 OK"));

    // Retention: the running Hookscope prunes at once what is past it.
    let kept = succeeded(&run(&["retention", "30"], dir.path()));
    assert!(
        kept.contains("3 deliveries past it: the running Hookscope prunes them now"),
        "{kept}"
    );
    events_become(&serve, "the 2020 deliveries are pruned", |events| {
        events.len() == 4
            && events
                .iter()
                .all(|e| e["received_at"].as_str() > Some("2025"))
    })
    .await;
    assert!(succeeded(&run(&["retention", "off"], dir.path())).contains("until you delete them"));

    // Forget: the live stream says so (windows reload), the export holds what went.
    let told = tokio::spawn(heard_on_stream(
        serve.stream().await,
        "event: erased".into(),
        Duration::from_secs(10),
    ));
    let taken = dir.path().join("marie.json");
    let forgot = succeeded(&run(
        &[
            "forget",
            "marie.dupont@example.fr",
            "--yes",
            "--export",
            taken.to_str().unwrap(),
        ],
        dir.path(),
    ));
    assert!(
        forgot.contains("Forgot marie.dupont@example.fr: 4 deliveries about them"),
        "{forgot}"
    );
    let exported: Vec<Value> =
        serde_json::from_slice(&std::fs::read(&taken).unwrap()).expect("the export is JSON");
    assert_eq!(exported.len(), 4, "the export holds what was erased");
    let heard = told.await.unwrap();
    assert!(
        heard.contains("event: erased"),
        "the live stream says it: {heard}"
    );
    assert!(event_ids(&serve).await.is_empty());
    let nothing = run(&["forget", "marie.dupont@example.fr", "--yes"], dir.path());
    assert!(!nothing.status.success());
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("nothing stored"));

    // The systeme.io key: the running Hookscope has it at once.
    succeeded(&run(&["systeme", "key", "sk-one-writer"], dir.path()));
    assert_eq!(serve.api_json("/api/systeme").await["api_key_set"], true);
    succeeded(&run(&["systeme", "key", "--clear"], dir.path()));
    assert_eq!(serve.api_json("/api/systeme").await["api_key_set"], false);
}

/// A Hookscope killed without a chance to say it stopped leaves its address behind: the
/// commands see the folder is free and change it themselves, and the next Hookscope
/// announces itself afresh.
#[test]
fn a_killed_hookscope_leaves_nothing_that_misleads_a_command() {
    let dir = tempfile::tempdir().unwrap();
    let mut serve = Serve::start(dir.path());
    let announced = dir.path().join("hookscope.server");
    let first: Value = serde_json::from_slice(&std::fs::read(&announced).unwrap()).unwrap();
    assert_eq!(first["pid"], serve.child.id());
    serve.signal("KILL");
    serve.wait(Duration::from_secs(10));
    assert!(announced.exists(), "a SIGKILL leaves the file");

    let set = succeeded(&run(
        &["endpoints", "forward", "default", "http://127.0.0.1:9/hook"],
        dir.path(),
    ));
    assert!(set.contains("every delivery is forwarded"), "{set}");

    let mut second = Serve::start(dir.path());
    let now: Value = serde_json::from_slice(&std::fs::read(&announced).unwrap()).unwrap();
    assert_eq!(now["pid"], second.child.id());
    let listed = succeeded(&run(&["endpoints"], dir.path()));
    assert!(
        listed.contains("forwards to http://127.0.0.1:9/hook"),
        "{listed}"
    );
    second.signal("TERM");
    assert!(second.wait(Duration::from_secs(15)).success());
    assert!(
        !announced.exists(),
        "a Hookscope that stops takes its address back"
    );
}
