//! The desktop app in a real window: started by WebKitWebDriver through tauri-driver,
//! under Xvfb, with the embedded listener on free ports and a temporary data folder.
//! Needs a display and the drivers, so it is ignored by a plain `cargo test`;
//! `make test` runs it with `xvfb-run ... -- --ignored` and keeps the screenshots in
//! tests/artifacts/.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

const APP: &str = env!("CARGO_BIN_EXE_hookscope-desktop");
const PATIENCE: Duration = Duration::from_secs(30);
const SALE: &str = "New sale: 5.83 EUR, Comment créer un blog qui rapporte";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// tauri-driver with the app's environment; stopped with SIGTERM so it takes
/// WebKitWebDriver (and the app) down with it.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start(env: &[(&str, &str)]) -> Driver {
        let port = free_port();
        let driver = std::env::var("TAURI_DRIVER").unwrap_or_else(|_| "tauri-driver".into());
        let child = Command::new(driver)
            .args([
                "--port",
                &port.to_string(),
                "--native-port",
                &free_port().to_string(),
            ])
            // No tunnel unless a test picks one; a real one would need the internet.
            .env("HOOKSCOPE_TUNNEL", "off")
            .env("NGROK_AUTHTOKEN", "")
            .envs(env.iter().copied())
            .env("HOOKSCOPE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("tauri-driver is installed (make test installs it)");
        Driver { child, port }
    }

    async fn session(&self) -> Client {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("tauri:options".into(), json!({ "application": APP }));
        capabilities.insert("browserName".into(), json!("wry"));
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let url = format!("http://127.0.0.1:{}", self.port);
        let started = std::time::Instant::now();
        loop {
            let mut builder = ClientBuilder::new(connector.clone());
            builder.capabilities(capabilities.clone());
            match tokio::time::timeout(PATIENCE, builder.connect(&url)).await {
                Ok(Ok(client)) => return client,
                Ok(Err(_)) if started.elapsed() < PATIENCE => {
                    // tauri-driver is still starting.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Ok(Err(error)) => panic!("no WebDriver session: {error}"),
                Err(_) => panic!("the app did not open a window within {PATIENCE:?}"),
            }
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// The text of the first element matching `css`, once there is one. (The DOM text:
/// WebKitWebDriver's rendered-text command answers "" for some visible elements.)
async fn text_of(client: &Client, css: &str) -> String {
    client
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} appears: {e}"))
        .prop("textContent")
        .await
        .unwrap()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Waits until the text of `css` is `expected`; returns the last text seen.
async fn wait_text(client: &Client, css: &str, expected: &str) -> String {
    let started = std::time::Instant::now();
    loop {
        let text = text_of(client, css).await;
        if text == expected || started.elapsed() > PATIENCE {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `css` matches at least `count` elements.
async fn wait_count_at_least(client: &Client, css: &str, count: usize) {
    let started = std::time::Instant::now();
    loop {
        let found = client.find_all(Locator::Css(css)).await.unwrap().len();
        if found >= count {
            return;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "{css}: {found} elements, expected at least {count}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `css` matches exactly `count` elements.
async fn wait_count(client: &Client, css: &str, count: usize) {
    let started = std::time::Instant::now();
    loop {
        let found = client.find_all(Locator::Css(css)).await.unwrap().len();
        if found == count {
            return;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "{css}: {found} elements, expected {count}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn screenshot(client: &Client, name: &str) {
    let png = client
        .screenshot()
        .await
        .expect("the window can be captured");
    let dir = repo().join("tests/artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

fn fixture(path: &str) -> (Vec<u8>, Vec<(String, String)>) {
    let body_path = repo().join("fixtures").join(path);
    let headers = hookscope_core::capture::headers_file::parse(
        &std::fs::read_to_string(body_path.with_extension("headers")).unwrap(),
    );
    (std::fs::read(body_path).unwrap(), headers)
}

async fn send(url: &str, path: &str) {
    let (body, headers) = fixture(path);
    let mut request = reqwest::Client::new().post(url).body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    assert_eq!(
        request.send().await.unwrap().status(),
        200,
        "{path} is acknowledged"
    );
}

#[tokio::test]
#[ignore = "needs a display, tauri-driver and WebKitWebDriver: run by make test under Xvfb"]
async fn deliveries_show_up_on_their_contact_and_search_finds_them() {
    let data = tempfile::tempdir().unwrap();
    let driver = Driver::start(&[
        ("HOOKSCOPE_DATA_DIR", data.path().to_str().unwrap()),
        ("HOOKSCOPE_INGEST", "127.0.0.1:0"),
        ("HOOKSCOPE_UI", "127.0.0.1:0"),
        // The user's own public URL: shown as the one to paste into systeme.io.
        ("HOOKSCOPE_TUNNEL", "manual:https://hooks.example.com"),
    ]);
    let client = driver.session().await;

    let webhook_url = text_of(&client, "[data-testid=webhook-url]").await;
    assert!(
        webhook_url.starts_with("http://127.0.0.1:"),
        "the window shows the webhook URL: {webhook_url}"
    );
    let token = webhook_url.rsplit('/').next().unwrap();
    let public = format!("https://hooks.example.com/h/{token}");
    assert_eq!(
        wait_text(&client, "[data-testid=public-url]", &public).await,
        public,
        "the window shows the public webhook URL"
    );
    assert_eq!(
        wait_text(&client, "[data-testid=listener-status]", "Listening").await,
        "Listening"
    );
    let sent = [
        "systeme-automation/sale-completed.json",
        "systeme-automation/tag-added.json",
        "systeme-automation/page-visited.json",
        "systeme-automation/course-completed-unknown-type.json",
        "systeme-settings/sale-new.json",
        "systeme-settings/contact-tag-added.json",
        "systeme-settings/contact-tag-removed-nested.json",
    ];
    for path in sent {
        send(&webhook_url, path).await;
    }

    let marie = "[data-testid=contact][data-email=\"marie.dupont@example.fr\"]";
    client
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(marie))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(
        wait_text(&client, "[data-testid=timeline-title]", "Marie Dupont").await,
        "Marie Dupont"
    );
    wait_count(&client, "[data-testid=event]", 4).await;
    screenshot(&client, "desktop-window").await;

    let search = client
        .find(Locator::Css("input[type=search]"))
        .await
        .unwrap();
    search.send_keys("TEST-1922@SYSTEME").await.unwrap();
    wait_count(&client, "[data-testid=contact]", 1).await;
    client
        .find(Locator::Css(
            "[data-testid=contact][data-email=\"test-1922@systeme.io\"]",
        ))
        .await
        .expect("search by email in any case finds the contact")
        .click()
        .await
        .unwrap();
    assert_eq!(
        wait_text(&client, "[data-testid=detail-summary]", SALE).await,
        SALE,
        "the detail shows the decoded summary"
    );
    screenshot(&client, "desktop-search").await;
    client.close().await.unwrap();

    let stored: i64 = rusqlite_count(data.path());
    assert_eq!(
        stored,
        sent.len() as i64,
        "the window's listener stored every delivery"
    );
}

fn rusqlite_count(data_dir: &Path) -> i64 {
    let out = Command::new(repo().join("target/debug/hookscope"))
        .args([
            "export",
            "--format",
            "ndjson",
            "--data-dir",
            data_dir.to_str().unwrap(),
        ])
        .output();
    match out {
        Ok(out) if out.status.success() => {
            String::from_utf8_lossy(&out.stdout).lines().count() as i64
        }
        _ => panic!("target/debug/hookscope export runs (make test builds it first)"),
    }
}

#[tokio::test]
#[ignore = "needs a display, tauri-driver and WebKitWebDriver: run by make test under Xvfb"]
async fn start_problems_are_explained_in_the_window() {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_addr = busy.local_addr().unwrap().to_string();
    let newer = tempfile::tempdir().unwrap();
    let newer_db = hookscope_core::store::db::database_path(newer.path());
    hookscope_core::store::db::open_writer(&newer_db, hookscope_core::store::db::Synchronous::Full)
        .unwrap()
        .pragma_update(None, "user_version", 999)
        .unwrap();
    let newer_bytes = std::fs::read(&newer_db).unwrap();
    let fine = tempfile::tempdir().unwrap();
    let cases = [
        (
            fine.path().to_str().unwrap(),
            busy_addr.as_str(),
            "cannot listen on",
            "port-in-use",
        ),
        (
            "/proc/hookscope",
            "127.0.0.1:0",
            "cannot use data directory",
            "data-dir",
        ),
        (
            newer.path().to_str().unwrap(),
            "127.0.0.1:0",
            "was written by a newer Hookscope",
            "newer-db",
        ),
    ];
    for (data_dir, ingest, expected, name) in cases {
        let driver = Driver::start(&[
            ("HOOKSCOPE_DATA_DIR", data_dir),
            ("HOOKSCOPE_INGEST", ingest),
            ("HOOKSCOPE_UI", "127.0.0.1:0"),
        ]);
        let client = driver.session().await;
        let started = std::time::Instant::now();
        let message = loop {
            let text = text_of(&client, "[data-testid=start-error]").await;
            if text != "Starting…" || started.elapsed() > PATIENCE {
                break text;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(
            message.contains(expected),
            "{name}: the window explains it: {message}"
        );
        screenshot(&client, &format!("desktop-error-{name}")).await;
        client.close().await.unwrap();
    }
    assert_eq!(
        std::fs::read(&newer_db).unwrap(),
        newer_bytes,
        "a newer store is left as it was"
    );
    drop(busy);
}

#[tokio::test]
#[ignore = "needs a display, tauri-driver and WebKitWebDriver: run by make test under Xvfb"]
async fn a_damaged_database_is_moved_aside_and_the_window_says_where() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = vec![0x42u8; 8192];
    std::fs::write(dir.path().join("hookscope.db"), &garbage).unwrap();
    let driver = Driver::start(&[
        ("HOOKSCOPE_DATA_DIR", dir.path().to_str().unwrap()),
        ("HOOKSCOPE_INGEST", "127.0.0.1:0"),
        ("HOOKSCOPE_UI", "127.0.0.1:0"),
    ]);
    let client = driver.session().await;
    let notice = text_of(&client, "[data-testid=start-notice]").await;
    let moved: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with("hookscope.db.unreadable-")
                && !name.ends_with("-wal")
                && !name.ends_with("-shm")
        })
        .collect();
    assert_eq!(moved.len(), 1, "one file set aside: {moved:?}");
    assert!(
        notice.contains(&moved[0].display().to_string()) && notice.contains("new, empty one"),
        "the window says where the file went: {notice}"
    );
    assert_eq!(
        std::fs::read(&moved[0]).unwrap(),
        garbage,
        "kept byte for byte"
    );
    assert_eq!(
        wait_text(&client, "[data-testid=listener-status]", "Listening").await,
        "Listening",
        "the new store serves"
    );
    assert!(
        text_of(&client, "[data-testid=start-notice]")
            .await
            .contains("moved to")
    );
    screenshot(&client, "desktop-notice-damaged-db").await;
    client.close().await.unwrap();
}

#[tokio::test]
#[ignore = "needs a display, a D-Bus session, tauri-driver and WebKitWebDriver: run by make test"]
async fn a_second_launch_hands_over_to_the_first() {
    assert!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "single instance works over the D-Bus session bus: run under dbus-run-session"
    );
    // The same data folder: the same app.
    let data = tempfile::tempdir().unwrap();
    let env = [
        ("HOOKSCOPE_DATA_DIR", data.path().to_str().unwrap()),
        ("HOOKSCOPE_INGEST", "127.0.0.1:0"),
        ("HOOKSCOPE_UI", "127.0.0.1:0"),
    ];
    let driver = Driver::start(&env);
    let client = driver.session().await;
    assert_eq!(
        wait_text(&client, "[data-testid=listener-status]", "Listening").await,
        "Listening"
    );

    let second = tokio::process::Command::new(APP)
        .envs(env)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let output = tokio::time::timeout(PATIENCE, second.wait_with_output())
        .await
        .expect("the second launch exits instead of opening another window")
        .unwrap();
    assert!(output.status.success(), "{:?}", output.status);
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("Webhook URL"),
        "the second launch started no listener of its own"
    );
    assert_eq!(
        text_of(&client, "[data-testid=listener-status]").await,
        "Listening",
        "the first window is still there"
    );
    client.close().await.unwrap();
}

/// Every string of a systeme.io payload replaced by an XSS payload; the event type and
/// times kept so it still decodes as that event, emails kept email-shaped.
fn poisoned(value: &mut serde_json::Value, payloads: &[String], next: &mut usize, key: &str) {
    match value {
        serde_json::Value::String(text) => {
            if key == "type" || key.ends_with("_at") || key.ends_with("At") {
                return;
            }
            let payload = &payloads[*next % payloads.len()];
            *next += 1;
            *text = if key.to_lowercase().contains("email") {
                format!("{payload}@example.com")
            } else {
                payload.clone()
            };
        }
        serde_json::Value::Array(items) => {
            for item in items {
                poisoned(item, payloads, next, key);
            }
        }
        serde_json::Value::Object(fields) => {
            for (k, v) in fields.iter_mut() {
                poisoned(v, payloads, next, k);
            }
        }
        _ => {}
    }
}

fn url_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Nothing ran (`window.__pwned` unset) and no markup or handler came from a payload.
const INERT_CHECK: &str = r#"
    const app = document.querySelector('#app');
    const handlers = [...app.querySelectorAll('*')].flatMap((el) =>
      [...el.attributes].filter((a) => a.name.startsWith('on')).map((a) => el.tagName + ' ' + a.name));
    const foreign = [...app.querySelectorAll('script, img, svg, iframe, object, embed, video, math, marquee, base, meta, link, xss, noscript, a[href^="javascript" i], a[href*="evil.example"]')]
      .map((el) => el.outerHTML.slice(0, 80));
    return { pwned: window.__pwned ?? null, handlers, foreign };
"#;

#[tokio::test]
#[ignore = "needs a display, tauri-driver and WebKitWebDriver: run by make test under Xvfb"]
async fn xss_payloads_in_every_field_stay_inert_in_the_window() {
    let corpus: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("tests/hostile/xss-payloads.json")).unwrap(),
    )
    .unwrap();
    let payloads: Vec<String> = corpus["payloads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    assert!(payloads.len() >= 40);
    let data = tempfile::tempdir().unwrap();
    let driver = Driver::start(&[
        ("HOOKSCOPE_DATA_DIR", data.path().to_str().unwrap()),
        ("HOOKSCOPE_INGEST", "127.0.0.1:0"),
        ("HOOKSCOPE_UI", "127.0.0.1:0"),
    ]);
    let client = driver.session().await;
    // Tall enough that the virtual lists render every row.
    client.set_window_size(1400, 3200).await.unwrap();
    let webhook_url = text_of(&client, "[data-testid=webhook-url]").await;
    let http = reqwest::Client::new();
    let mut next = 0;
    let mut sent = 0;
    for family in ["systeme-automation", "systeme-settings"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("fixtures").join(family))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        for file in files {
            let mut body: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
            poisoned(&mut body, &payloads, &mut next, "");
            let ascii = payloads
                .iter()
                .filter(|p| p.is_ascii())
                .nth(sent % 30)
                .unwrap();
            let response = http
                .post(format!(
                    "{webhook_url}/{}?q={}",
                    url_encoded(&payloads[sent % payloads.len()]),
                    url_encoded(ascii)
                ))
                .header("content-type", "application/json")
                .header("x-evil", ascii.as_str())
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            sent += 1;
        }
    }
    for payload in &payloads[..6] {
        let response = http
            .post(&webhook_url)
            .header("content-type", "text/html")
            .body(payload.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        sent += 1;
    }
    let expected = format!("{sent} events");
    let started = std::time::Instant::now();
    while !text_of(&client, "[data-testid=counts]")
        .await
        .contains(&expected)
    {
        assert!(started.elapsed() < PATIENCE, "the window counts {expected}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let inert = |found: serde_json::Value, place: &str| {
        assert_eq!(
            found,
            json!({"pwned": null, "handlers": [], "foreign": []}),
            "nothing ran or was injected ({place})"
        );
    };
    inert(client.execute(INERT_CHECK, vec![]).await.unwrap(), "lists");
    // Every event, every tab of its detail (through All events; the list is virtual, so
    // each row is scrolled into view and found again after each click).
    client
        .find(Locator::XPath("//button[.//span[text()='All events']]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let mut covered = 0;
    for j in 0..sent {
        let found: bool = client
            .execute(
                "const rows = document.querySelectorAll('[data-testid=event]');
                 const row = [...rows].find((r) => r.dataset.index === String(arguments[0])) ?? rows[arguments[0]];
                 if (!row) return false; row.scrollIntoView({block: 'center'}); row.click(); return true;",
                vec![json!(j)],
            )
            .await
            .unwrap()
            .as_bool()
            .unwrap_or(false);
        if !found {
            break;
        }
        for tab in ["pretty", "raw", "headers"] {
            client
                .wait()
                .at_most(PATIENCE)
                .for_element(Locator::Css(&format!("[data-testid=tab-{tab}]")))
                .await
                .unwrap_or_else(|e| panic!("event {j} has a {tab} tab: {e}"))
                .click()
                .await
                .unwrap();
            inert(
                client.execute(INERT_CHECK, vec![]).await.unwrap(),
                &format!("event {j}, {tab}"),
            );
        }
        covered += 1;
    }
    assert_eq!(covered, sent, "every event was opened");
    let contacts = client
        .find_all(Locator::Css("[data-testid=contact]"))
        .await
        .unwrap()
        .len();
    assert!(contacts > 5, "{contacts} contacts");
    for i in 0..contacts {
        let clicked = client
            .execute(
                "const row = document.querySelectorAll('[data-testid=contact]')[arguments[0]];
                 if (!row) return false; row.scrollIntoView({block: 'center'}); row.click(); return true;",
                vec![json!(i)],
            )
            .await
            .unwrap();
        if clicked != json!(true) {
            break;
        }
        wait_count_at_least(&client, "[data-testid=event]", 1).await;
        inert(
            client.execute(INERT_CHECK, vec![]).await.unwrap(),
            &format!("contact {i}"),
        );
    }
    screenshot(&client, "desktop-xss-corpus").await;
    client.close().await.unwrap();
}

/// What a broken layout is, measured in the page: shared with the browser tests.
const LAYOUT_CHECK: &str = include_str!("../../tests/browser/layout-check.js");

/// The header's actions: each a visible button of the header, or an item of its menu.
const HEADER_ACTIONS: [&str; 5] = ["Tunnel…", "Export", "Forward…", "systeme.io…", "Insights…"];
const VISIBLE_TEXTS: &str = r#"
    const [selector] = arguments;
    return [...document.querySelectorAll(selector)]
      .filter((el) => { const r = el.getBoundingClientRect(); return r.width > 2 && r.height > 2; })
      .map((el) => el.textContent.trim());
"#;

async fn visible_texts(client: &Client, selector: &str) -> Vec<String> {
    serde_json::from_value(
        client
            .execute(VISIBLE_TEXTS, vec![json!(selector)])
            .await
            .unwrap(),
    )
    .unwrap()
}

async fn post_json(url: &str, body: &serde_json::Value) {
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
#[ignore = "needs a display, tauri-driver and WebKitWebDriver: run by make test under Xvfb"]
async fn the_window_at_its_default_size_holds_the_longest_content() {
    let data = tempfile::tempdir().unwrap();
    let driver = Driver::start(&[
        ("HOOKSCOPE_DATA_DIR", data.path().to_str().unwrap()),
        ("HOOKSCOPE_INGEST", "127.0.0.1:0"),
        ("HOOKSCOPE_UI", "127.0.0.1:0"),
        // A public URL too: the fullest header.
        ("HOOKSCOPE_TUNNEL", "manual:https://hooks.example.com"),
    ]);
    let client = driver.session().await;
    let size = client
        .execute("return [innerWidth, innerHeight];", vec![])
        .await
        .unwrap();
    assert_eq!(size, json!([1280, 800]), "the window opens at 1280×800");

    // Content as long as deliveries make it: a 300-character name, email and offer, a
    // 200-character tag (a summary with no space to break at), a right-to-left name.
    let webhook_url = text_of(&client, "[data-testid=webhook-url]").await;
    let email = format!(
        "{}end@{}example.com",
        "very.long.address.".repeat(15),
        "sub.".repeat(6)
    );
    let first = format!("Zénobie-{}", "Alexandrine".repeat(13));
    let surname = format!("Montmorency-{}", "Laval".repeat(28));
    let tag = |email: &str, tag: &str, first: &str, surname: &str| {
        json!({
            "type": "contact.tag.added",
            "data": { "tag": { "id": 1, "name": tag }, "contact": { "id": 1, "email": email,
                "fields": { "first_name": first, "surname": surname } } },
        })
    };
    post_json(
        &webhook_url,
        &tag(&email, &"T".repeat(200), &first, &surname),
    )
    .await;
    post_json(
        &webhook_url,
        &tag("maryam@example.com", "عميل", "مريم", "الحسيني"),
    )
    .await;
    // Its headers name it a Settings webhook's SALE_NEW (the signature no longer matches).
    let (sale, sale_headers) = fixture("systeme-settings/sale-new.json");
    let mut sale: serde_json::Value = serde_json::from_slice(&sale).unwrap();
    sale["customer"]["email"] = json!(email);
    sale["customer"]["fields"]["first_name"] = json!(first);
    sale["customer"]["fields"]["surname"] = json!(surname);
    sale["pricePlan"]["name"] = json!(format!("{}fin", "Formation complète ".repeat(15)));
    let mut request = reqwest::Client::new()
        .post(&webhook_url)
        .body(sale.to_string());
    for (name, value) in sale_headers {
        request = request.header(name, value);
    }
    assert_eq!(request.send().await.unwrap().status(), 200);

    let contact = format!(
        "[data-testid=contact][data-email=\"{}\"]",
        email.to_lowercase()
    );
    // The sale brings the contact to the top of the list: clicked before, its row could
    // move away under the click and the row that takes its place be opened instead.
    let started = std::time::Instant::now();
    loop {
        let top = client
            .find(Locator::Css("[data-testid=contact]"))
            .await
            .unwrap()
            .attr("data-email")
            .await
            .unwrap();
        if top.as_deref() == Some(email.to_lowercase().as_str()) {
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the sale's contact comes first: {top:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    client
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(&contact))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let name = format!("{first} {surname}");
    assert_eq!(
        wait_text(&client, "[data-testid=timeline-title]", &name).await,
        name
    );
    wait_count(&client, "[data-testid=event]", 2).await;
    let opened = client
        .execute(
            "const row = [...document.querySelectorAll('[data-testid=event]')]
               .find((r) => r.querySelector('.summary')?.textContent.startsWith('New sale'));
             row?.click(); return !!row;",
            vec![],
        )
        .await
        .unwrap();
    let rows = client
        .execute(
            "return [...document.querySelectorAll('[data-testid=event] .summary')].map((s) => s.textContent);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        opened,
        json!(true),
        "the sale's row is in the timeline: {rows}"
    );
    let started = std::time::Instant::now();
    while !text_of(&client, "[data-testid=detail-summary]")
        .await
        .starts_with("New sale: 47.00 EUR, Formation complète")
    {
        assert!(started.elapsed() < PATIENCE, "the sale opens in the detail");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let the header measure itself after the last change.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let found = client.execute(LAYOUT_CHECK, vec![]).await.unwrap();
    assert_eq!(
        found["problems"],
        json!([]),
        "at 1280×800 nothing overlaps, is cut or leaves the window"
    );
    assert!(found["checked"].as_u64().unwrap() > 10, "{found}");
    screenshot(&client, "desktop-layout-1280x800").await;

    let direct = visible_texts(&client, "header button").await;
    let missing: Vec<&str> = HEADER_ACTIONS
        .into_iter()
        .filter(|action| !direct.iter().any(|text| text == action))
        .collect();
    if !missing.is_empty() {
        client
            .find(Locator::Css("[data-testid=more-button]"))
            .await
            .expect("actions without room are in the header's menu")
            .click()
            .await
            .unwrap();
        let items = visible_texts(&client, "[role=menuitem]").await;
        for action in &missing {
            assert!(
                items.iter().any(|text| text == action),
                "{action} is reachable: {direct:?} / {items:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        screenshot(&client, "desktop-layout-1280x800-menu").await;
    }
    client.close().await.unwrap();
}
