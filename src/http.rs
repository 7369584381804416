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

/// The id of the request being served (also sent as `x-ms-request-id`).
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// Gives every response a unique `x-ms-request-id`, echoes a sane
/// `x-ms-client-request-id`, and logs server errors with both.
pub async fn request_context(mut request: Request, next: Next) -> Response {
    let request_id = Uuid::new_v4().to_string();
    request.extensions_mut().insert(RequestId(request_id.clone()));
    let client_request_id = request.headers().get("x-ms-client-request-id").filter(|v| v.len() <= 256).cloned();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert("x-ms-request-id", HeaderValue::from_str(&request_id).expect("a UUID is a header value"));
    if let Some(id) = client_request_id {
        headers.insert("x-ms-client-request-id", id);
    }
    if response.status().is_server_error() {
        let error = response.extensions().get::<LoggedError>().map(|e| e.0.as_str()).unwrap_or("(no detail)");
        tracing::error!(%request_id, %method, %path, status = response.status().as_u16(), error, "request failed");
    }
    response
}
