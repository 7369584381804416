//! Cross-cutting HTTP plumbing: request ids and the one place 5xx errors are
//! logged. Error renderers attach the error to the response; this middleware
//! logs it once, with the request id the client also sees.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use uuid::Uuid;

use crate::error::CoreError;

/// The full text of a server-side error, carried in response extensions
/// from the renderer to the logging middleware (never to the client).
#[derive(Clone, Debug)]
pub struct LoggedError(Arc<String>);

impl LoggedError {
    /// Attaches `core` to `response` when it is a server error.
    pub fn attach(response: &mut Response, core: CoreError) {
        if core.status().is_server_error() {
            response.extensions_mut().insert(LoggedError(Arc::new(format!("{core:#}"))));
        }
    }
}

tokio::task_local! {
    /// Who the request being served turned out to be, for its access-log
    /// line: set by authentication, read by the logging middleware.
    static CALLER: std::cell::RefCell<Option<Caller>>;
}

/// The caller of a request as the access log shows it: the key's public id
/// and the scope it reaches (never the secret).
#[derive(Clone, Debug)]
pub struct Caller {
    /// The key's public id.
    pub key_id: String,
    /// `*` or one scope.
    pub scope: String,
}

/// Records the authenticated caller of the current request (no-op outside one).
pub fn note_caller(key_id: &str, scope: &str) {
    let _ = CALLER.try_with(|c| *c.borrow_mut() = Some(Caller { key_id: key_id.to_owned(), scope: scope.to_owned() }));
}

/// Runs `next` with room for `note_caller`; returns the response and the caller noted.
pub async fn with_caller(request: Request, next: Next) -> (Response, Option<Caller>) {
    CALLER
        .scope(std::cell::RefCell::new(None), async move {
            let response = next.run(request).await;
            (response, CALLER.with(|c| c.borrow_mut().take()))
        })
        .await
}

/// The id of the request being served (also sent as `x-ms-request-id`);
/// a header value, so passing it around copies no bytes.
#[derive(Clone, Debug)]
pub struct RequestId(pub HeaderValue);

impl RequestId {
    /// A fresh random id (a hyphenated UUID).
    fn new() -> RequestId {
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let text = Uuid::new_v4().hyphenated().encode_lower(&mut text);
        RequestId(HeaderValue::from_str(text).expect("a UUID is a header value"))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        self.0.to_str().expect("made from a UUID")
    }
}

/// Turns a handler panic into a 500 in the dialect's envelope (logged with
/// the request id by `request_context`), never a dropped connection.
pub async fn catch_panics(request: Request, next: Next) -> Response {
    use futures_util::FutureExt;
    let uri = request.uri().clone(); // shares the bytes: no copy unless it panics
    match std::panic::AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => response,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            crate::app::error_for_path(uri.path(), CoreError::Internal(anyhow::anyhow!("handler panicked: {what}")))
        }
    }
}

/// Gives every response a unique `x-ms-request-id`, echoes a sane
/// `x-ms-client-request-id`, and logs server errors with both.
pub async fn request_context(mut request: Request, next: Next) -> Response {
    let request_id = RequestId::new();
    request.extensions_mut().insert(request_id.clone());
    let client_request_id = request.headers().get("x-ms-client-request-id").filter(|v| v.len() <= 256).cloned();
    let method = request.method().clone();
    let uri = request.uri().clone(); // shares the bytes
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert("x-ms-request-id", request_id.0.clone());
    if let Some(id) = client_request_id {
        headers.insert("x-ms-client-request-id", id);
    }
    if response.status().is_server_error() {
        let error = response.extensions().get::<LoggedError>().map(|e| e.0.as_str()).unwrap_or("(no detail)");
        let (request_id, path) = (request_id.as_str(), uri.path());
        tracing::error!(request_id, %method, path, status = response.status().as_u16(), error, "request failed");
    }
    response
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_answers_500_in_its_dialect_with_a_request_id() {
        async fn boom() -> &'static str {
            panic!("boom")
        }
        let app = Router::new()
            .route("/projects/p1/operationstatuses/x", get(boom))
            .layer(axum::middleware::from_fn(catch_panics))
            .layer(axum::middleware::from_fn(request_context));
        let request = axum::http::Request::get("/projects/p1/operationstatuses/x").body(Body::empty()).unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), 500);
        assert_eq!(response.headers()["x-ms-error-code"], "InternalServerError");
        assert!(response.headers().contains_key("x-ms-request-id"));
        let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "InternalServerError");
        assert!(!body.to_string().contains("boom"), "internals stay in the log");
    }
}
