//! Pointing systeme.io's Settings webhook at the current public URL, against a local
//! stand-in of systeme.io's documented webhook API (`/api/webhooks`, `X-API-Key`,
//! merge-patch updates, 422 for a URL already used, pages of results). The real API needs
//! the internet and an account; only this stand-in is exercised here.

use crate::support;

use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, patch};
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use hookscope_core::Running;
use hookscope_core::app::{self, ServeOptions};
use hookscope_core::tunnel::TunnelChoice;
use serde_json::{Value, json};
use sha2::Sha256;
use support::{Api, Fixture, deliver, fixture, test_options};

const API_KEY: &str = "sk-test-systeme";
/// The stand-in answers in small pages so that following `hasMore` is exercised.
const PAGE: usize = 2;

#[derive(Clone, Debug)]
struct Hook {
    id: u64,
    name: String,
    url: String,
    secret: String,
    subscriptions: Vec<String>,
}

#[derive(Default)]
struct Account {
    hooks: Vec<Hook>,
    next_id: u64,
    /// URLs the list does not show (registered elsewhere meanwhile); `true`: only once.
    hidden: Vec<(String, bool)>,
    creates: usize,
    /// Create the next webhook but lose the answer (a 502 from a proxy).
    lose_next_answer: bool,
}

type Shared = Arc<Mutex<Account>>;

fn view(h: &Hook) -> Value {
    json!({"id": h.id, "name": h.name, "url": h.url, "subscriptions": h.subscriptions, "active": true})
}

fn refused() -> (StatusCode, Json<Value>) {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"message": "Invalid API key"})),
    )
}

fn already_used() -> (StatusCode, Json<Value>) {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(
            json!({"title": "An error occurred", "detail": "url: This value is already used.",
            "violations": [{"propertyPath": "url", "message": "This value is already used."}]}),
        ),
    )
}

fn authorised(headers: &HeaderMap) -> bool {
    headers.get("x-api-key").and_then(|v| v.to_str().ok()) == Some(API_KEY)
}

async fn list(
    State(account): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> (StatusCode, Json<Value>) {
    if !authorised(&headers) {
        return refused();
    }
    let mut account = account.lock().unwrap();
    let hidden: Vec<String> = account.hidden.iter().map(|(u, _)| u.clone()).collect();
    account.hidden.retain(|(_, once)| !once);
    let after: u64 = query
        .get("startingAfter")
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(10)
        .min(PAGE);
    let rest: Vec<&Hook> = account
        .hooks
        .iter()
        .filter(|h| h.id > after && !hidden.contains(&h.url))
        .collect();
    let items: Vec<Value> = rest.iter().take(limit).map(|h| view(h)).collect();
    (
        StatusCode::OK,
        Json(json!({"items": items, "hasMore": rest.len() > limit})),
    )
}

async fn create(
    State(account): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    if !authorised(&headers) {
        return refused();
    }
    let mut account = account.lock().unwrap();
    account.creates += 1;
    let url = body["url"].as_str().unwrap_or_default().to_string();
    if account.hooks.iter().any(|h| h.url == url) {
        return already_used();
    }
    account.next_id += 1;
    let hook = Hook {
        id: account.next_id,
        name: body["name"].as_str().unwrap_or_default().into(),
        url,
        secret: body["secret"].as_str().unwrap_or_default().into(),
        subscriptions: serde_json::from_value(body["subscriptions"].clone()).unwrap_or_default(),
    };
    account.hooks.push(hook.clone());
    if std::mem::take(&mut account.lose_next_answer) {
        return (
            StatusCode::BAD_GATEWAY,
            Json(json!({"detail": "Bad gateway"})),
        );
    }
    (StatusCode::CREATED, Json(view(&hook)))
}

async fn update(
    State(account): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<u64>,
    body: String,
) -> (StatusCode, Json<Value>) {
    if !authorised(&headers) {
        return refused();
    }
    if headers.get("content-type").and_then(|v| v.to_str().ok())
        != Some("application/merge-patch+json")
    {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Json(json!({"detail": "The content-type \"application/json\" is not supported."})),
        );
    }
    let body: Value = serde_json::from_str(&body).unwrap();
    let url = body["url"].as_str().unwrap().to_string();
    let mut account = account.lock().unwrap();
    if account.hooks.iter().any(|h| h.url == url && h.id != id) {
        return already_used();
    }
    match account.hooks.iter_mut().find(|h| h.id == id) {
        Some(hook) => {
            hook.url = url;
            if let Some(secret) = body["secret"].as_str() {
                hook.secret = secret.to_string();
            }
            if let Ok(subscriptions) = serde_json::from_value(body["subscriptions"].clone()) {
                hook.subscriptions = subscriptions;
            }
            let hook = hook.clone();
            (StatusCode::OK, Json(view(&hook)))
        }
        None => (StatusCode::NOT_FOUND, Json(json!({"detail": "Not Found"}))),
    }
}

async fn stand_in(account: Shared) -> String {
    let app = Router::new()
        .route("/api/webhooks", get(list).post(create))
        .route("/api/webhooks/{id}", patch(update))
        .with_state(account);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

async fn send(api: &Api, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
    let response = api
        .http
        .request(method, format!("{}{path}", api.base))
        .bearer_auth(&api.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn use_tunnel(api: &Api, url: &str) {
    let (status, _) = send(
        api,
        reqwest::Method::PUT,
        "/api/tunnel",
        json!({"tunnel": format!("manual:{url}")}),
    )
    .await;
    assert_eq!(status, 200);
}

fn signed(secret: &str) -> Fixture {
    let mut f = fixture("systeme-settings/sale-new");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(&f.body);
    let signature = hex(&mac.finalize().into_bytes());
    for (name, value) in f.headers.iter_mut() {
        if name.eq_ignore_ascii_case("x-webhook-signature") {
            *value = signature.clone();
        }
    }
    f
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn the_settings_webhook_is_created_then_follows_the_public_url() {
    let account: Shared = Arc::default();
    {
        let mut a = account.lock().unwrap();
        for (i, url) in ["https://shop.example/hooks/one", "https://crm.example/in"]
            .iter()
            .enumerate()
        {
            a.hooks.push(Hook {
                id: i as u64 + 1,
                name: format!("Other {i}"),
                url: url.to_string(),
                secret: "theirs".into(),
                subscriptions: vec!["SALE_NEW".into()],
            });
        }
        a.next_id = 2;
    }
    let base = stand_in(account.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let running: Running = app::start(ServeOptions {
        tunnel: Some(TunnelChoice::Off),
        systeme_api: Some(base),
        ..test_options(dir.path())
    })
    .await
    .unwrap();
    let api = Api::of(&running);
    let endpoint = running.state.store.default_endpoint().unwrap();
    let register = format!("/api/endpoints/{}/systeme", endpoint.id);
    let http = reqwest::Client::new();

    // Without a key, then with a wrong one: said plainly, nothing created.
    let (status, answer) = send(&api, reqwest::Method::POST, &register, json!({})).await;
    assert_eq!(status, 400);
    assert!(
        answer["message"].as_str().unwrap().contains("API key"),
        "{answer}"
    );
    let (status, _) = send(
        &api,
        reqwest::Method::PUT,
        "/api/systeme",
        json!({"api_key": "wrong"}),
    )
    .await;
    assert_eq!(status, 200);
    use_tunnel(&api, "https://first.example.test").await;
    let (status, answer) = send(&api, reqwest::Method::POST, &register, json!({})).await;
    assert_eq!(status, 400);
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("refused the API key"),
        "{answer}"
    );
    assert_eq!(
        api.json("/api/endpoints").await["endpoints"][0]["has_secret"],
        false
    );

    let (_, view) = send(
        &api,
        reqwest::Method::PUT,
        "/api/systeme",
        json!({"api_key": API_KEY}),
    )
    .await;
    assert_eq!(view["api_key_set"], true);
    assert!(
        !view.to_string().contains(API_KEY),
        "the key is never shown"
    );

    // Created with every event and a fresh secret, which the endpoint now holds.
    let (status, created) = send(&api, reqwest::Method::POST, &register, json!({})).await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["action"], "created");
    assert_eq!(created["secret_stored"], true);
    let first_url = format!("https://first.example.test/h/{}", endpoint.token);
    assert_eq!(created["webhook"]["url"], first_url);
    let secret = {
        let a = account.lock().unwrap();
        let hook = a.hooks.iter().find(|h| h.url == first_url).unwrap().clone();
        assert_eq!(hook.subscriptions.len(), 6);
        assert!(hook.name.contains("Hookscope"));
        assert!(hook.secret.len() >= 32, "a strong secret");
        hook.secret
    };
    let endpoints = api.json("/api/endpoints").await;
    assert_eq!(endpoints["endpoints"][0]["has_secret"], true);
    assert!(!endpoints.to_string().contains(&secret));
    // Verification works at once: a delivery signed with that secret is valid.
    let id = deliver(&http, &running.webhook_url, &signed(&secret)).await;
    assert_eq!(
        api.json(&format!("/api/events/{id}")).await["signature"],
        "valid"
    );

    let (_, again) = send(&api, reqwest::Method::POST, &register, json!({})).await;
    assert_eq!(again["action"], "unchanged");

    // A new tunnel address: the same webhook is updated, not duplicated.
    use_tunnel(&api, "https://second.example.test").await;
    let (status, updated) = send(&api, reqwest::Method::POST, &register, json!({})).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["action"], "updated");
    assert_eq!(updated["previous_url"], first_url);
    let second_url = format!("https://second.example.test/h/{}", endpoint.token);
    {
        let a = account.lock().unwrap();
        assert_eq!(a.hooks.len(), 3);
        assert_eq!(a.creates, 1);
        assert!(
            a.hooks
                .iter()
                .any(|h| h.url == second_url && h.secret == secret)
        );
    }
    let listed = api.json("/api/systeme/webhooks").await;
    let listed = listed["webhooks"].as_array().unwrap();
    assert_eq!(listed.len(), 3, "every page was read");
    let mine: Vec<&Value> = listed
        .iter()
        .filter(|w| w["endpoint"] == endpoint.id.as_str())
        .collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["url"], second_url);

    // Plain HTTP (bore) cannot be a Settings webhook.
    use_tunnel(&api, "http://plain.example.test:4000").await;
    let (status, answer) = send(&api, reqwest::Method::POST, &register, json!({})).await;
    assert_eq!(status, 400);
    assert!(
        answer["message"].as_str().unwrap().contains("HTTPS"),
        "{answer}"
    );
    let (status, _) = send(
        &api,
        reqwest::Method::POST,
        &register,
        json!({"events": ["SALE_WHATEVER"]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(account.lock().unwrap().creates, 1);

    let (_, forgotten) = send(
        &api,
        reqwest::Method::PUT,
        "/api/systeme",
        json!({"api_key": null}),
    )
    .await;
    assert_eq!(forgotten["api_key_set"], false);
    running.stop().await;
}

#[tokio::test]
async fn a_url_already_used_is_adopted_or_explained() {
    let account: Shared = Arc::default();
    let base = stand_in(account.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let running = app::start(ServeOptions {
        tunnel: Some("manual:https://race.example.test".parse().unwrap()),
        systeme_api: Some(base),
        ..test_options(dir.path())
    })
    .await
    .unwrap();
    let api = Api::of(&running);
    send(
        &api,
        reqwest::Method::PUT,
        "/api/systeme",
        json!({"api_key": API_KEY}),
    )
    .await;
    let endpoint = running.state.store.default_endpoint().unwrap();
    let url = format!("https://race.example.test/h/{}", endpoint.token);
    let register = format!("/api/endpoints/{}/systeme", endpoint.id);
    let has_secret =
        async || api.json("/api/endpoints").await["endpoints"][0]["has_secret"].clone();
    let hand_made = Hook {
        id: 7,
        name: "By hand".into(),
        url: url.clone(),
        secret: "typed by hand".into(),
        subscriptions: vec!["SALE_NEW".into()],
    };

    // systeme.io says the URL is used, yet never lists it: explained, and the secret
    // Hookscope made for it is not kept (systeme.io refused it).
    {
        let mut a = account.lock().unwrap();
        a.hooks.push(hand_made.clone());
        a.next_id = 7;
        a.hidden.push((url.clone(), false));
    }
    let (status, answer) = send(&api, reqwest::Method::POST, &register, json!({})).await;
    assert_eq!(status, 400);
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("This value is already used"),
        "{answer}"
    );
    assert_eq!(has_secret().await, false);

    // Registered by someone else while Hookscope was looking: the first list misses it,
    // the create gets 422, the second list finds it and it is taken over with a secret
    // Hookscope knows.
    account.lock().unwrap().hidden = vec![(url.clone(), true)];
    let (status, adopted) = send(
        &api,
        reqwest::Method::POST,
        &register,
        json!({"events": ["SALE_NEW"]}),
    )
    .await;
    assert_eq!(status, 200, "{adopted}");
    assert_eq!(adopted["action"], "unchanged");
    assert_eq!(adopted["webhook"]["id"], "7");
    assert_eq!(adopted["secret_stored"], true);
    let secret = account.lock().unwrap().hooks[0].secret.clone();
    assert_ne!(secret, "typed by hand");
    let http = reqwest::Client::new();
    let id = deliver(&http, &running.webhook_url, &signed(&secret)).await;
    assert_eq!(
        api.json(&format!("/api/events/{id}")).await["signature"],
        "valid"
    );

    // An answer lost on the way: the webhook may exist, so the secret made for it stays,
    // and the next try finds the webhook and makes it use that secret.
    let (_, second_endpoint) = send(
        &api,
        reqwest::Method::POST,
        "/api/endpoints",
        json!({"name": "Second"}),
    )
    .await;
    let second = format!(
        "/api/endpoints/{}/systeme",
        second_endpoint["id"].as_str().unwrap()
    );
    account.lock().unwrap().lose_next_answer = true;
    let (status, _) = send(&api, reqwest::Method::POST, &second, json!({})).await;
    assert_eq!(status, 400);
    let (status, retried) = send(&api, reqwest::Method::POST, &second, json!({})).await;
    assert_eq!(status, 200, "{retried}");
    assert_eq!(retried["action"], "unchanged");
    assert_eq!(
        retried["secret_stored"], false,
        "the secret stored on the first try is used"
    );
    let lost = {
        let a = account.lock().unwrap();
        assert_eq!(a.hooks.len(), 2, "no duplicate");
        a.hooks.iter().find(|h| h.id != 7).unwrap().clone()
    };
    let second_url = format!(
        "{}/h/{}",
        running.webhook_url.split("/h/").next().unwrap(),
        second_endpoint["token"].as_str().unwrap()
    );
    let id = deliver(&http, &second_url, &signed(&lost.secret)).await;
    assert_eq!(
        api.json(&format!("/api/events/{id}")).await["signature"],
        "valid"
    );
    running.stop().await;
}
