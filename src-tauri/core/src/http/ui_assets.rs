//! The UI's files (the Vite build in `ui/dist`), embedded in release builds and read from
//! disk in debug builds, and the security headers every response of the UI port carries.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

#[derive(rust_embed::Embed)]
#[folder = "$CARGO_MANIFEST_DIR/../../ui/dist/"]
#[allow_missing = true]
struct Files;

/// Payloads are hostile input: even if some text slipped into markup, no script could run
/// or load, and nothing can frame the page.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const NOT_BUILT: &str = "<!doctype html><meta charset=utf-8><title>Hookscope</title>\
    <p>Hookscope is running, but this binary was built without its UI. \
    Run <code>make build</code> (or <code>npm run build</code> in <code>ui/</code>).</p>";

pub async fn serve(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    if let Some(file) = Files::get(path) {
        let immutable = path.starts_with("assets/");
        return (
            [
                (header::CONTENT_TYPE, file.metadata.mimetype().to_string()),
                (
                    header::CACHE_CONTROL,
                    if immutable {
                        "public, max-age=31536000, immutable".to_string()
                    } else {
                        "no-cache".to_string()
                    },
                ),
            ],
            file.data,
        )
            .into_response();
    }
    // Paths without an extension are the app's own views: give them the page.
    let is_view = !path.rsplit('/').next().unwrap_or("").contains('.');
    match Files::get("index.html") {
        Some(index) if is_view => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            index.data,
        )
            .into_response(),
        None if is_view || path == "index.html" => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            NOT_BUILT,
        )
            .into_response(),
        _ => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

pub async fn security_headers(request: Request, next: Next) -> Response {
    let is_api = request.uri().path().starts_with("/api/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let fixed = [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
        (
            header::HeaderName::from_static("cross-origin-resource-policy"),
            HeaderValue::from_static("same-origin"),
        ),
    ];
    for (name, value) in fixed {
        headers.insert(name, value);
    }
    if is_api {
        // Captured personal data never lands in a disk cache.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
