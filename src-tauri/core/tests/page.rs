//! The page is sent with the answers it asks for first, to the token's holder only, never
//! stored by the browser, and a payload cannot break out of the blocks that carry them.

use crate::support;

use std::time::Duration;

use support::{Api, start_server};

const HOSTILE: &str = "</script><script>alert(1)</script><!-- </SCRIPT >";

/// The page's data blocks: (the request each answers, its JSON text).
fn blocks(html: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = html;
    let open = "<script type=\"application/json\" data-boot=\"";
    while let Some(at) = rest.find(open) {
        rest = &rest[at + open.len()..];
        let (path, after) = rest.split_once("\">").expect("a block's tag ends");
        let (json, after) = after.split_once("</script>").expect("a block ends");
        found.push((path.to_string(), json.to_string()));
        rest = after;
    }
    found
}

async fn page(api: &Api, cookie: Option<String>) -> reqwest::Response {
    let mut request = api.http.get(format!("{}/", api.base));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    response
}

#[tokio::test]
async fn the_page_carries_its_first_answers_to_the_token_holder_only() {
    let dir = tempfile::tempdir().unwrap();
    let running = start_server(dir.path()).await;
    let api = Api::of(&running);
    let http = reqwest::Client::new();
    let body = serde_json::json!({
        "type": "contact.created",
        "data": { "contact": { "email": "marie@example.com",
            "fields": { "first_name": HOSTILE, "surname": "<!--" } } },
    });
    let answer = http
        .post(&running.webhook_url)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    tokio::time::timeout(Duration::from_secs(20), async {
        while api.json("/api/events").await["events"]
            .as_array()
            .unwrap()
            .is_empty()
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the delivery is indexed");

    let token_cookie = format!("{}={}", running.state.access.cookie_name, api.token);
    let response = page(&api, Some(format!("theme=dark; {token_cookie}"))).await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let html = response.text().await.unwrap();
    assert!(html.contains("<div id=\"app\">"), "the UI is built: {html}");
    let sent = blocks(&html);
    let paths: Vec<&str> = sent.iter().map(|(path, _)| path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/api/events?limit=100",
            "/api/contacts?limit=100",
            "/api/status"
        ]
    );
    // Each is the API's own answer to that request, and the hostile text is in it,
    // whole, with no `<` left for the HTML parser.
    let mut hostile_seen = 0;
    for (path, json) in &sent {
        assert!(!json.contains('<'), "{path}: {json}");
        let from_page: serde_json::Value = serde_json::from_str(json).unwrap();
        let asked = api.json(path).await;
        if path == "/api/status" {
            assert_eq!(
                from_page["events"], asked["events"],
                "{from_page} vs {asked}"
            );
            assert_eq!(from_page["contacts"], asked["contacts"]);
        } else {
            assert_eq!(from_page, asked, "{path}");
        }
        hostile_seen += usize::from(from_page.to_string().contains(HOSTILE));
    }
    assert!(
        hostile_seen >= 1,
        "the payload's text reached the page: {sent:?}"
    );
    // Nothing ends a script element but the page's own ends: its script and the blocks.
    assert_eq!(
        html.matches("</script").count(),
        html.matches("<script").count(),
        "{html}"
    );

    // Without the token, or with a wrong one: the page alone, as before.
    for cookie in [
        None,
        Some(format!("{token_cookie}x")),
        Some(format!("{}=", running.state.access.cookie_name)),
        Some("theme=dark".to_string()),
    ] {
        let response = page(&api, cookie.clone()).await;
        assert_eq!(
            response.headers()["cache-control"],
            "no-cache",
            "{cookie:?}"
        );
        let html = response.text().await.unwrap();
        assert!(html.contains("<div id=\"app\">"));
        assert!(!html.contains("data-boot"), "{cookie:?}: {html}");
        assert!(!html.contains("marie@example.com"), "{cookie:?}");
    }
    running.stop().await;
}
