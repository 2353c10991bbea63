//! The page sent with the answers it asks for first. A page that has to load its script
//! and then ask for its lists shows them a round trip (and a busy main thread) later; with
//! the answers in the page, the first rows are drawn as the script runs. Only for a
//! request that carries the API token, and only when the indexer is caught up (otherwise
//! the page asks, and its reads wait for the indexer as every read does).

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use tower::ServiceExt;

use crate::http::state::AppState;

/// What the page asks for as it starts (`ui/src/lib/app.svelte.ts`, `start`), exactly as it
/// spells it: an answer is used for a request with the same path and query only.
pub const FIRST_REQUESTS: [&str; 3] = [
    "/api/events?limit=100",
    "/api/contacts?limit=100",
    "/api/status",
];

/// Past this, an answer is left for the page to ask for.
const LARGEST_ANSWER: usize = 4 * 1024 * 1024;

/// The first answers as `<script type="application/json">` data blocks, each naming the
/// request it answers; empty when there is nothing to send. `api` is the API's router
/// (without the `/api` prefix), so the answers are the API's own, through its guards.
pub async fn first_answers(api: Router, state: &AppState, headers: &HeaderMap) -> String {
    if state.store.writer.watch_indexed().borrow().behind > 0 {
        return String::new();
    }
    let mut blocks = String::new();
    for path in FIRST_REQUESTS {
        let Some(answer) = answer(&api, path, headers).await else {
            // Without the token (or on any failure) the page asks for itself.
            return String::new();
        };
        blocks.push_str("<script type=\"application/json\" data-boot=\"");
        blocks.push_str(path);
        blocks.push_str("\">");
        push_escaped(&mut blocks, &answer);
        blocks.push_str("</script>");
    }
    blocks
}

async fn answer(api: &Router, path: &str, headers: &HeaderMap) -> Option<String> {
    let mut request = Request::builder()
        .method(Method::GET)
        .uri(path.strip_prefix("/api").expect("an API path"))
        .body(Body::empty())
        .ok()?;
    for name in [header::COOKIE, header::AUTHORIZATION, header::HOST] {
        for value in headers.get_all(&name) {
            request.headers_mut().append(name.clone(), value.clone());
        }
    }
    let response = api.clone().oneshot(request).await.ok()?;
    if response.status() != StatusCode::OK {
        return None;
    }
    let body = axum::body::to_bytes(response.into_body(), LARGEST_ANSWER)
        .await
        .ok()?;
    String::from_utf8(body.to_vec()).ok()
}

/// JSON inside a script element: no `<` may reach the HTML parser, or a payload holding
/// `</script>` or `<!--` would end the block. `\u003c` is the same character to JSON, and
/// `<` can only appear inside JSON strings.
fn push_escaped(out: &mut String, json: &str) {
    for (i, part) in json.split('<').enumerate() {
        if i > 0 {
            out.push_str("\\u003c");
        }
        out.push_str(part);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_angle_bracket_reaches_the_page_and_the_json_is_unchanged() {
        let hostile = serde_json::json!({
            "summary": "</script><script>alert(1)</script><!-- <\u{2028}",
            "nested": ["<", "<<", "</SCRIPT >", "a<b"],
        })
        .to_string();
        let mut out = String::new();
        push_escaped(&mut out, &hostile);
        assert!(!out.contains('<'), "{out}");
        let back: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(back.to_string(), hostile);
    }
}
