//! `hookscope forget` and `hookscope retention` as a user runs them: beside a running
//! server, and killed halfway.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support;

use support::{BIN, Serve};

const MARIE: &str = "marie.erase@example.fr";
const HOUR: i64 = 3_600_000_000;

fn run(args: &[&str], data_dir: &Path) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env("HOOKSCOPE_DATA_DIR", data_dir)
        .stdin(Stdio::null())
        .output()
        .expect("hookscope runs")
}

/// One export line as `hookscope import` takes it.
fn line(n: usize, at: i64, email: &str, note: &str) -> String {
    json!({
        "id": format!("01900000-0000-7000-8000-{n:012}"),
        "received_at": hookscope_core::timefmt::format_micros(at), "endpoint": "ep_history", "method": "POST", "path": "/h/x",
        "headers": [["content-type", "application/json"]],
        "body": {"type": "contact.tag.added", "created_at": "2026-11-28T09:00:00+00:00",
                 "data": {"contact": {"id": n % 97, "email": email,
                                      "fields": {"first_name": "Someone", "surname": note}},
                          "tag": {"id": n % 13, "name": format!("tag {}", n % 13)}}},
    })
    .to_string()
}

/// Imports `lines` into `data_dir` (indexed: no server runs).
fn import(data_dir: &Path, lines: &[String]) {
    let file = data_dir.join("history.ndjson");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let imported = run(&["import", file.to_str().unwrap()], data_dir);
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    std::fs::remove_file(file).unwrap();
}

/// Whether any file of the store holds `needle` (in any case).
fn store_holds(data_dir: &Path, needle: &str) -> Option<String> {
    let needle = needle.to_ascii_lowercase();
    std::fs::read_dir(data_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.to_string_lossy();
            name.contains("hookscope.db") || name.contains("hookscope-derived.db")
        })
        .find(|p| {
            let bytes = std::fs::read(p).unwrap().to_ascii_lowercase();
            memchr::memmem::find(&bytes, needle.as_bytes()).is_some()
        })
        .map(|p| p.display().to_string())
}

fn sql_count(data_dir: &Path, sql: &str) -> i64 {
    let conn = hookscope_core::store::db::open_reader(&data_dir.join("hookscope.db")).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Every event as exported, sorted by id: deliveries with what was derived from them.
fn exported(data_dir: &Path) -> Vec<Value> {
    let out = run(&["export", "--format", "ndjson"], data_dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut events: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    events.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    events
}

/// The same store derived again from its deliveries, in a copy.
fn exported_after_reindex(data_dir: &Path) -> Vec<Value> {
    let copy = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(data_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("hookscope.db")
            || path.to_string_lossy().contains("hookscope-derived.db")
        {
            std::fs::copy(&path, copy.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    let reindexed = run(&["reindex"], copy.path());
    assert!(
        reindexed.status.success(),
        "{}",
        String::from_utf8_lossy(&reindexed.stderr)
    );
    exported(copy.path())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_beside_a_running_server_asks_exports_and_the_window_is_told() {
    let dir = tempfile::tempdir().unwrap();
    let now = hookscope_core::timefmt::now_micros();
    let mut lines: Vec<String> = (0..40)
        .map(|n| {
            line(
                n,
                now - HOUR,
                &format!("other{}@example.com", n % 6),
                "Other",
            )
        })
        .collect();
    lines.extend((40..43).map(|n| line(n, now - HOUR, MARIE, "Zzyzxerase")));
    // Someone else's delivery that mentions her.
    lines.push(line(43, now - HOUR, "bob@example.com", MARIE));
    import(dir.path(), &lines);
    let serve = Serve::start(dir.path());
    let told = tokio::spawn(support::heard_on_stream(
        serve.stream().await,
        "event: erased".into(),
        Duration::from_secs(20),
    ));

    // Without --yes and no answer on the terminal, nothing goes.
    let declined = run(&["forget", "Marie.Erase@example.fr"], dir.path());
    assert!(!declined.status.success());
    let said = String::from_utf8_lossy(&declined.stderr);
    assert!(
        said.contains("3 deliveries about them and 1 other deliveries that mention"),
        "{said}"
    );
    assert!(said.contains("nothing erased"), "{said}");
    assert_eq!(sql_count(dir.path(), "SELECT count(*) FROM deliveries"), 44);

    let export = dir.path().join("marie.json");
    let forgot = run(
        &[
            "forget",
            "Marie.Erase@example.fr",
            "--yes",
            "--export",
            export.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(
        forgot.status.success(),
        "{}",
        String::from_utf8_lossy(&forgot.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&forgot.stdout).trim(),
        format!("Forgot {MARIE}: 3 deliveries about them and 1 that mentioned them.")
    );
    let copy: Vec<Value> = serde_json::from_slice(&std::fs::read(&export).unwrap()).unwrap();
    assert_eq!(
        copy.len(),
        4,
        "the export holds what the forget erased: her three and Bob's that mentions her"
    );
    assert_eq!(copy.iter().filter(|e| e["contact_key"] == MARIE).count(), 3);
    assert!(copy.iter().any(|e| e["contact_key"] == "bob@example.com"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&export).unwrap().permissions().mode() & 0o777,
        0o600,
        "her data is readable by the user alone"
    );

    let heard = told.await.unwrap();
    assert!(
        heard.contains("event: erased"),
        "the window is told to reload: {heard}"
    );
    let timeline = serve
        .api_json(&format!("/api/events?email={}", MARIE.replace('@', "%40")))
        .await;
    assert_eq!(timeline["events"], json!([]), "{timeline}");
    let all = serve.api_json("/api/events?limit=500").await;
    assert_eq!(all["events"].as_array().unwrap().len(), 40);
    let mut serve = serve;
    serve.signal("INT");
    assert!(serve.wait(Duration::from_secs(15)).success());
    drop(serve);
    for unique in [MARIE, "zzyzxerase"] {
        assert_eq!(store_holds(dir.path(), unique), None, "no byte of {unique}");
    }
    assert_eq!(exported(dir.path()), exported_after_reindex(dir.path()));
}

#[test]
fn a_forget_killed_at_any_moment_erases_all_or_nothing_and_finishes_its_scrub() {
    let dir = tempfile::tempdir().unwrap();
    let now = hookscope_core::timefmt::now_micros();
    // Enough deliveries that a forget takes a while: indexing, the search, the erasure.
    let mut lines: Vec<String> = (0..6_000)
        .map(|n| {
            let email = format!("person{}@example.com", n % 500);
            line(n, now - HOUR, &email, "Other")
        })
        .collect();
    for n in (0..6_000).step_by(120) {
        lines[n] = line(n, now - HOUR, MARIE, "Zzyzxerase");
    }
    import(dir.path(), &lines);
    // Imported deliveries are indexed; undo that so the forget has that work to do too.
    {
        use hookscope_core::store::db;
        let path = db::database_path(dir.path());
        let mut conn = db::open_writer(&path, db::Synchronous::Full).unwrap();
        hookscope_core::store::indexer::reset(&mut conn).unwrap();
    }
    let hers = "SELECT count(*) FROM deliveries WHERE body LIKE '%marie.erase%'";
    assert_eq!(sql_count(dir.path(), hers), 50);
    let orphans = "SELECT count(*) FROM events WHERE seq NOT IN (SELECT seq FROM deliveries)";
    // How long a forget left alone takes on this machine, timed on a copy: the kills are
    // spread over that span, whatever the machine's speed or load.
    let span = {
        let copy = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.to_string_lossy().contains("hookscope.db")
                || path.to_string_lossy().contains("hookscope-derived.db")
            {
                std::fs::copy(&path, copy.path().join(path.file_name().unwrap())).unwrap();
            }
        }
        let started = Instant::now();
        assert!(
            run(&["forget", MARIE, "--yes"], copy.path())
                .status
                .success()
        );
        started.elapsed()
    };
    let rounds = support::kill_rounds(8);
    let mut kills = Vec::new();
    for round in 0..rounds {
        let mut forget = Command::new(BIN)
            .args(["forget", MARIE, "--yes"])
            .env("HOOKSCOPE_DATA_DIR", dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let at = span * round as u32 / rounds as u32;
        std::thread::sleep(at);
        let finished = forget.try_wait().unwrap().is_some();
        if !finished {
            forget.kill().unwrap(); // SIGKILL
            kills.push(at.as_millis());
        }
        let status = forget.wait().unwrap();
        let left = sql_count(dir.path(), hers);
        assert!(
            left == 50 || left == 0,
            "after a kill at {at:?}: {left} of her 50 deliveries left"
        );
        assert_eq!(
            sql_count(dir.path(), orphans),
            0,
            "no event outlives its delivery"
        );
        if finished || left == 0 {
            assert!(
                !finished || status.success(),
                "a forget left alone succeeds"
            );
            break;
        }
    }
    if sql_count(dir.path(), hers) > 0 {
        // Every kill came before the commit: one left alone finishes it.
        assert!(
            run(&["forget", MARIE, "--yes"], dir.path())
                .status
                .success()
        );
    }
    assert_eq!(
        sql_count(dir.path(), hers),
        0,
        "a forget ended (killed at {kills:?} ms of {span:?})"
    );
    // A scrub cut short is finished by the next start.
    let serve = Serve::start(dir.path());
    let deadline = Instant::now() + Duration::from_secs(60);
    while sql_count(
        dir.path(),
        "SELECT count(*) FROM settings WHERE key LIKE 'erasure.%pending'",
    ) > 0
    {
        assert!(Instant::now() < deadline, "the scrub finishes");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(serve);
    for unique in [MARIE, "zzyzxerase"] {
        assert_eq!(store_holds(dir.path(), unique), None, "no byte of {unique}");
    }
    assert_eq!(exported(dir.path()), exported_after_reindex(dir.path()));
    println!("forget killed at {kills:?} ms of {span:?}, then finished");
}

#[test]
fn pruning_killed_halfway_goes_on_at_the_next_start_and_ends_as_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let now = hookscope_core::timefmt::now_micros();
    // 4,000 deliveries from 3 days ago (8 prune batches) and 300 from an hour ago.
    let mut lines: Vec<String> = (0..4_000)
        .map(|n| {
            let at = now - 72 * HOUR + n as i64 * 1_000_000;
            line(n, at, &format!("old{}@example.com", n % 300), "Prunedaway")
        })
        .collect();
    lines.extend((4_000..4_300).map(|n| {
        line(
            n,
            now - HOUR,
            &format!("old{}@example.com", n % 300),
            "Young",
        )
    }));
    import(dir.path(), &lines);
    let set = run(&["retention", "2"], dir.path());
    assert!(set.status.success());
    assert!(String::from_utf8_lossy(&set.stdout).contains("kept 2 days"));
    let total = "SELECT count(*) FROM deliveries";
    let mut seen = Vec::new();
    // Killed while it prunes, a little later each time (`make soak` kills more often).
    let rounds = support::kill_rounds(6);
    for round in 0..rounds {
        let mut serve = Serve::start(dir.path());
        std::thread::sleep(Duration::from_millis(50 + round * 200));
        serve.child.kill().unwrap();
        serve.wait(Duration::from_secs(5));
        drop(serve);
        let left = sql_count(dir.path(), total);
        assert!(
            (4_300 - left) % 500 == 0 || left == 300,
            "whole batches go: {left} left"
        );
        seen.push(left);
        if left == 300 {
            break;
        }
    }
    // The run goes on at the next start and ends there: what is left pruned, shapes
    // learned again, the file scrubbed.
    let serve = Serve::start(dir.path());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let policy = serve_policy(&serve);
        if policy["last_run"].is_object()
            && sql_count(
                dir.path(),
                "SELECT count(*) FROM settings WHERE key LIKE 'erasure.%pending'",
            ) == 0
        {
            break;
        }
        assert!(Instant::now() < deadline, "the run ends: {policy}");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(serve);
    assert_eq!(
        sql_count(dir.path(), total),
        300,
        "pruning went on after each kill: {seen:?}"
    );
    assert_eq!(
        store_holds(dir.path(), "prunedaway"),
        None,
        "no pruned payload left"
    );
    let kept = exported(dir.path());
    assert_eq!(kept.len(), 300);
    assert_eq!(kept, exported_after_reindex(dir.path()));
    println!("pruning killed with {seen:?} deliveries left, then finished");
}

fn serve_policy(serve: &Serve) -> Value {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(serve.api_json("/api/retention"))
}

#[test]
fn forget_refuses_a_blank_or_partial_address_and_erases_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let now = hookscope_core::timefmt::now_micros();
    let lines: Vec<String> = (0..6)
        .map(|n| line(n, now - HOUR, &format!("p{n}@example.com"), "Someone"))
        .collect();
    import(dir.path(), &lines);
    // What a user may type or a script may pass: empty, spaces, a domain, one letter, a
    // pattern, two addresses.
    for bad in [
        "",
        " ",
        "\t",
        "@example.com",
        "example.com",
        "p",
        "*",
        "%",
        "p1@",
        "p1@example",
        "p1@example.com p2@example.com",
        "p1@@example.com",
    ] {
        let refused = run(&["forget", bad, "-y"], dir.path());
        assert!(!refused.status.success(), "forget {bad:?} fails");
        let said = String::from_utf8_lossy(&refused.stderr);
        assert!(said.contains("not an email address"), "{bad:?}: {said}");
    }
    assert_eq!(
        sql_count(dir.path(), "SELECT count(*) FROM deliveries"),
        6,
        "nothing was erased"
    );
}

#[test]
fn retention_refuses_out_of_range_days_and_a_dry_run_says_what_would_go() {
    let dir = tempfile::tempdir().unwrap();
    let now = hookscope_core::timefmt::now_micros();
    // Deliveries 1 to 8 days old.
    let lines: Vec<String> = (1..=8)
        .map(|d| {
            line(
                d as usize,
                now - d * 24 * HOUR - HOUR,
                "p@example.com",
                "Someone",
            )
        })
        .collect();
    import(dir.path(), &lines);
    assert!(
        !run(&["retention", "-1"], dir.path()).status.success(),
        "a negative is refused"
    );
    for bad in ["0", "36501", "213503982", "999999999", "1.5", "forever", ""] {
        let refused = run(&["retention", bad], dir.path());
        assert!(!refused.status.success(), "retention {bad:?} fails");
        let said = String::from_utf8_lossy(&refused.stderr);
        assert!(said.contains("36500"), "{bad:?} says the range: {said}");
    }
    let dry = run(&["retention", "3", "--dry-run"], dir.path());
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&dry.stdout).trim(),
        "With this retention, 6 deliveries would be pruned now (nothing changed)."
    );
    let shown = run(&["retention"], dir.path());
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains("kept until you delete them"),
        "the dry run changed nothing"
    );
    let set = run(&["retention", "36500"], dir.path());
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    assert_eq!(sql_count(dir.path(), "SELECT count(*) FROM deliveries"), 8);
}

/// `hookscope serve` with panics injected at `point`; a delivery's status.
fn post(serve: &Serve, n: usize) -> u16 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        reqwest::Client::new()
            .post(&serve.webhook_url)
            .header("content-type", "application/json")
            .body(format!(r#"{{"type":"contact.tag.added","data":{{"contact":{{"email":"p{n}@example.com"}}}}}}"#))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    })
}

fn status(serve: &Serve) -> Value {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(serve.api_json("/api/status"))
}

/// Polls `check` every 50 ms until it is true; panics after `limit`.
fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_writer_that_panics_once_is_started_again_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start_with(
        dir.path(),
        &[("HOOKSCOPE_INJECT_PANIC", Path::new("writer.commit:1"))],
    );
    assert_eq!(
        post(&serve, 0),
        503,
        "the delivery whose commit panicked is not acknowledged"
    );
    assert_eq!(post(&serve, 1), 200, "the next is stored");
    let now = status(&serve);
    assert_eq!(now["store"]["code"], "fault", "{now}");
    assert!(
        now["store"]["message"].as_str().unwrap().contains("writer"),
        "{now}"
    );
}

#[test]
fn a_writer_that_keeps_panicking_stops_hookscope_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut serve = Serve::start_with(
        dir.path(),
        &[("HOOKSCOPE_INJECT_PANIC", Path::new("writer.commit"))],
    );
    for n in 0..3 {
        assert_ne!(post(&serve, n), 200, "nothing is acknowledged");
    }
    let exit = serve.wait(Duration::from_secs(30));
    assert!(
        !exit.success(),
        "it exits non-zero for its supervisor: {exit:?}"
    );
}

#[test]
fn an_indexer_that_panics_is_started_again_and_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start_with(
        dir.path(),
        &[("HOOKSCOPE_INJECT_PANIC", Path::new("indexer.read:2"))],
    );
    assert_eq!(
        post(&serve, 0),
        200,
        "capture does not wait for the indexer"
    );
    eventually(Duration::from_secs(10), "the failure is reported", || {
        status(&serve)["store"]["code"] == "fault"
    });
    assert!(
        status(&serve)["store"]["message"]
            .as_str()
            .unwrap()
            .contains("indexer")
    );
    eventually(
        Duration::from_secs(20),
        "the delivery is indexed after the restarts",
        || {
            let now = status(&serve);
            now["events"] == 1 && now["indexing"]["behind"] == 0
        },
    );
}
