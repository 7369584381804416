//! The dashboard (`/ui`): four static files compiled into the binary, so
//! it works offline and needs no build step. Plain JavaScript over the
//! native API (fetch + a server-sent-event stream); see `app.js`.

use axum::Router;
use axum::http::{HeaderValue, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::service::state::AppState;

/// Only this origin's files, no inline script, no framing: the page holds a key.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// `/ui` and its assets.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ui", get(redirect))
        .route("/ui/", get(|| async { asset("text/html; charset=utf-8", include_str!("index.html")) }))
        .route("/ui/app.js", get(|| async { asset("text/javascript; charset=utf-8", include_str!("app.js")) }))
        .route("/ui/views.js", get(|| async { asset("text/javascript; charset=utf-8", include_str!("views.js")) }))
        .route("/ui/app.css", get(|| async { asset("text/css; charset=utf-8", include_str!("app.css")) }))
}

/// `/ui` → `/ui/`, keeping the query (`?pageSize=…`); browsers keep the fragment themselves.
async fn redirect(uri: Uri) -> Redirect {
    match uri.query() {
        Some(query) => Redirect::permanent(&format!("/ui/?{query}")),
        None => Redirect::permanent("/ui/"),
    }
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY)),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            // Assets change with the binary; revalidating is cheap on loopback.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}
