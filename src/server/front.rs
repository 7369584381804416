//! The one middleware around the router (request ids, trace spans, head
//! checks, limits, body deadlines, panics, the access log) and the one place 5xx
//! errors are logged. Error renderers attach the error to the response
//! (`LoggedError`); `Front` logs it once, with the request id the client
//! also sees.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderValue, Method, Version, header};
use axum::response::Response;
use futures_util::FutureExt;
use tower::Service;
use uuid::Uuid;

use crate::http::body::BodyTerms;
use crate::http::bounds::MAX_HEAD_BYTES;
use crate::http::caller::{Caller, noting_caller};
use crate::http::error::{CoreError, LoggedError};
use crate::server::limits::Limits;
use crate::server::request_span::Trace;
use crate::telemetry::otel::{RequestSpan, serving, with_incoming};

/// The one middleware every request passes through, wrapped around the
/// whole router: request ids, abuse limits, a handler panic turned into a
/// 500, 5xx logging, the access log and request metrics.
///
/// Why one hand-written service rather than a stack of `from_fn` layers: a
/// long-poll holds its whole middleware chain for up to a minute, and each
/// `from_fn` layer kept ≈ 1.2 KiB per request alive (the request parts,
/// `Next`, and the inner futures, several times over), besides cloning and
/// boxing every route per request. Here the router is called before the one
/// boxed future is made, so that future holds only the router's future and
/// the few values the epilogue needs (BENCHMARKS.md, long-poll memory).
#[derive(Clone)]
pub struct Front<S> {
    inner: S,
    limits: Arc<Limits>,
    envelope: Envelope,
}

/// How a refusal made here (a limit, a bad head, a panic) is rendered for a path.
pub type Envelope = fn(&str, CoreError) -> Response;

impl<S> Front<S> {
    /// Wraps `inner` (the router), enforcing `limits`; refusals go out in
    /// the envelope of the dialect the path belongs to.
    pub fn new(inner: S, limits: Arc<Limits>) -> Front<S> {
        Front::with_envelope(inner, limits, crate::dialect::error_for_path)
    }

    /// Wraps `inner`, rendering its refusals with `envelope` (the gRPC
    /// listener answers every refusal as a gRPC status).
    pub fn with_envelope(inner: S, limits: Arc<Limits>, envelope: Envelope) -> Front<S> {
        Front { inner, limits, envelope }
    }
}

impl<S> Service<Request> for Front<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let request_id = new_request_id();
        let client_request_id = request.headers().get("x-ms-client-request-id").filter(|v| v.len() <= 256).cloned();
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let peer = crate::http::peer::peer_of(&request).map(|p| p.ip());
        let with_body = has_body(&request);
        let body_on_http1 = request.version() <= Version::HTTP_11 && with_body;
        let trace = crate::server::request_span::start(&request, peer);
        let admitted = check_head(&request).and_then(|()| self.limits.admit(&request));
        let slot = match admitted {
            Ok(slot) => slot,
            Err(refused) => {
                // In the envelope of the dialect the path belongs to.
                let mut refused = (self.envelope)(&path, refused);
                if body_on_http1 {
                    close_after(&mut refused);
                }
                let span = match trace {
                    Trace::Span(span) => Some(span),
                    _ => None,
                };
                let noted = Noted { started, method: &method, path: &path, peer, span };
                let response = finish(refused, None, noted, &request_id, None, client_request_id);
                return Box::pin(std::future::ready(Ok(response)));
            }
        };
        let mut request = request;
        let terms = with_body.then(|| BodyTerms::new(tokio::time::Instant::now(), self.limits.settings().body_timeout));
        if let Some(terms) = &terms {
            request.extensions_mut().insert(terms.clone());
        }
        // The service that was made ready is the one called (tower's
        // contract); calling it here, not in the future, means the future
        // never holds the request.
        let ready = self.inner.clone();
        let envelope = self.envelope;
        let handled = std::mem::replace(&mut self.inner, ready).call(request);
        Box::pin(async move {
            let handled = std::panic::AssertUnwindSafe(handled).catch_unwind();
            let ((outcome, caller), span) = match trace {
                Trace::Span(span) => {
                    let (handled, span) = serving(span, noting_caller(handled)).await;
                    (handled, Some(span))
                }
                Trace::Incoming(traceparent) => (noting_caller(with_incoming(traceparent, handled)).await, None),
                Trace::None => (noting_caller(handled).await, None),
            };
            let mut response = match outcome {
                Ok(Ok(response)) => response,
                Ok(Err(never)) => match never {},
                Err(panic) => {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a panic".into());
                    envelope(&path, CoreError::Internal(anyhow::anyhow!("handler panicked: {what}")))
                }
            };
            if body_on_http1 && terms.is_some_and(|terms| !terms.was_read_whole()) {
                close_after(&mut response);
            }
            let noted = Noted { started, method: &method, path: &path, peer, span };
            Ok(finish(response, slot, noted, &request_id, caller, client_request_id))
        })
    }
}

/// What the front noted of a request as it arrived, for its epilogue.
struct Noted<'a> {
    started: Instant,
    method: &'a Method,
    path: &'a str,
    peer: Option<std::net::IpAddr>,
    span: Option<RequestSpan>,
}

/// Refuses heads HTTP forbids or longrun cannot read unambiguously: an
/// HTTP/1.1 request needs exactly one `Host` (RFC 9112 §3.2), and a
/// credential header may appear once (never "the first one wins").
fn check_head(request: &Request) -> Result<(), CoreError> {
    let headers = request.headers();
    if request.version() == Version::HTTP_11 && headers.get_all(header::HOST).iter().count() != 1 {
        return Err(CoreError::BadHead("an HTTP/1.1 request must carry exactly one Host header"));
    }
    if headers.get_all(header::AUTHORIZATION).iter().nth(1).is_some() {
        return Err(CoreError::BadHead("the Authorization header may appear only once"));
    }
    if headers.get_all("ocp-apim-subscription-key").iter().nth(1).is_some() {
        return Err(CoreError::BadHead("the Ocp-Apim-Subscription-Key header may appear only once"));
    }
    let head = request.method().as_str().len()
        + request.uri().path_and_query().map_or(0, |target| target.as_str().len())
        + headers.iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum::<usize>();
    if head > MAX_HEAD_BYTES {
        return Err(CoreError::HeadTooLarge { limit: MAX_HEAD_BYTES });
    }
    Ok(())
}

/// Whether the request carries a body (which a refusal leaves unread).
fn has_body(request: &Request) -> bool {
    let headers = request.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers.get(header::CONTENT_LENGTH).is_some_and(|length| length.as_bytes() != b"0")
}

/// Marks an HTTP/1.1 answer to a request whose body was not read as the
/// connection's last. hyper closes such a connection anyway (the unread
/// rest of the body is in the way); without the header a client may
/// send its next request on it first and see the connection drop.
fn close_after(response: &mut Response) {
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
}

/// A fresh request id (a hyphenated UUID), as the header value it is sent
/// as: made once, copied by reference count from then on.
fn new_request_id() -> HeaderValue {
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let text = Uuid::new_v4().hyphenated().encode_lower(&mut text);
    HeaderValue::from_str(text).expect("a UUID is a header value")
}

/// The epilogue of every request: ids in the headers, 5xx logged with
/// them, the access log and metrics, and the stream slot (if any) held
/// until the body ends.
fn finish(
    mut response: Response,
    slot: Option<crate::server::limits::Slot>,
    noted: Noted<'_>,
    request_id: &HeaderValue,
    caller: Option<Caller>,
    client_request_id: Option<HeaderValue>,
) -> Response {
    let Noted { started, method, path, peer, mut span } = noted;
    // The log lines below carry the span's ids.
    let _in_span = span.as_mut().map(|span| span.context().attach());
    let headers = response.headers_mut();
    headers.insert("x-ms-request-id", request_id.clone());
    let request_id = request_id.to_str().expect("made from a UUID");
    if let Some(id) = client_request_id {
        headers.insert("x-ms-client-request-id", id);
    }
    if response.status().is_server_error() {
        let error = response.extensions().get::<LoggedError>().map(LoggedError::text).unwrap_or("(no detail)");
        tracing::error!(%request_id, %method, %path, status = response.status().as_u16(), error, "request failed");
    }
    let finished = crate::server::metrics::Finished { started, method, path, request_id, caller, peer, span };
    crate::server::metrics::observe(finished, &response);
    match slot {
        Some(slot) => crate::server::limits::hold(response, slot),
        None => response,
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_answers_500_in_its_dialect_with_a_request_id() {
        async fn boom() -> &'static str {
            panic!("boom")
        }
        let router = Router::new().route("/projects/p1/operationstatuses/x", get(boom));
        let limits = Arc::new(Limits::new(crate::server::limits::LimitSettings::default()));
        let app = Front::new(router, limits);
        let request = axum::http::Request::get("/projects/p1/operationstatuses/x")
            .header("host", "x")
            .body(Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), 500);
        assert_eq!(response.headers()["x-ms-error-code"], "InternalServerError");
        assert!(response.headers().contains_key("x-ms-request-id"));
        let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "InternalServerError");
        assert!(!body.to_string().contains("boom"), "internals stay in the log");
    }

    #[tokio::test]
    async fn an_http1_answer_that_leaves_the_body_unread_closes_the_connection() {
        async fn too_large() -> StatusCode {
            StatusCode::PAYLOAD_TOO_LARGE
        }
        let router = Router::new().route("/v1/operations", axum::routing::post(too_large).get(too_large));
        let limits = Arc::new(Limits::new(crate::server::limits::LimitSettings::default()));
        let app = Front::new(router, limits);
        let answer = |request: axum::http::Request<Body>| app.clone().oneshot(request);

        let with_body = axum::http::Request::post("/v1/operations")
            .header("host", "x")
            .header("content-length", "5")
            .body(Body::from("12345"));
        let response = answer(with_body.unwrap()).await.unwrap();
        assert_eq!(response.headers()["connection"], "close");

        let without_body = axum::http::Request::get("/v1/operations").header("host", "x").body(Body::empty()).unwrap();
        let response = answer(without_body).await.unwrap();
        assert!(!response.headers().contains_key("connection"), "nothing left unread: keep the connection");

        let http2 = axum::http::Request::post("/v1/operations")
            .version(Version::HTTP_2)
            .header("content-length", "5")
            .body(Body::from("12345"));
        let response = answer(http2.unwrap()).await.unwrap();
        assert!(!response.headers().contains_key("connection"), "HTTP/2 has no connection header");
    }
}
