//! Prometheus metrics (`/metrics`), readiness (`/readyz`) and the access
//! log line. Requests are counted by dialect, route template and status,
//! with a latency histogram;
//! background work counts what it moved. The recorder is process-wide (the
//! `metrics` facade), installed once however many servers a process runs.

use std::net::IpAddr;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::http::caller::Caller;
use crate::model::OperationId;
use crate::service::state::AppState;
use crate::telemetry::metrics::recorder;

/// What the access log and the request metrics need of a finished request.
pub struct Finished<'a> {
    /// When the request arrived.
    pub started: Instant,
    /// Its method.
    pub method: &'a Method,
    /// Its path (for the dialect label only; never logged).
    pub path: &'a str,
    /// Its request id.
    pub request_id: &'a str,
    /// Who it turned out to be.
    pub caller: Option<Caller>,
    /// The client's address.
    pub peer: Option<IpAddr>,
    /// Its server span, while tracing is on.
    pub span: Option<crate::telemetry::otel::RequestSpan>,
}

/// Counts and times a request by dialect, route template and status, and
/// writes its access-log line (and an audit line when it was refused).
pub fn observe(request: Finished<'_>, response: &Response) {
    let Finished { started, method, path, request_id, caller, peer, span } = request;
    let dialect = crate::dialect::FrontEnd::of_path(path).label();
    let (key_id, scope) = caller.map(|c| (c.key_id, c.scope)).unwrap_or_default();
    // The template, never the raw path: ids would explode the label set.
    let route = response.extensions().get::<MatchedPath>().map_or("unmatched", |m| m.as_str());
    // A gRPC refusal is a 200 whose head carries the status: recorded as
    // the HTTP status Google's mapping pairs with it.
    let status = crate::dialect::google::grpc::http_equivalent(response.headers()).unwrap_or(response.status());
    let elapsed = started.elapsed();
    // One line per request: the route template, never ids, keys or tokens.
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    tracing::info!(
        target: "longrun::access", %method, route, status = status.as_str(), latency_ms, request_id, dialect, key_id,
        scope, "request"
    );
    if matches!(status.as_u16(), 401 | 403 | 429) {
        // The audit trail of refusals: who (key id, address), what, why; the
        // challenge and error code say why, and never carry a key or token.
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let (code, challenge) = (header("x-ms-error-code"), header("www-authenticate"));
        let peer = peer.map(|ip| ip.to_string()).unwrap_or_default();
        tracing::warn!(
            target: "longrun::audit", %method, route, status = status.as_str(), request_id, dialect, key_id, scope,
            peer, code, challenge, "request denied"
        );
    }
    if let Some(span) = span {
        crate::server::request_span::finish(span, method.as_str(), route, status, dialect);
    }
    let metrics = recorder().route(dialect, route, status);
    metrics.requests.increment(1);
    metrics.duration.record(elapsed.as_secs_f64());
}

/// A route layer that hands the matched route template to the response
/// (axum puts it only in the request), for `observe` outside the router.
#[derive(Clone)]
pub struct NoteRoute<S>(S);

impl<S> NoteRoute<S> {
    /// The layer, for `Router::route_layer`.
    pub fn layer() -> tower::layer::LayerFn<fn(S) -> NoteRoute<S>> {
        tower::layer::layer_fn(NoteRoute)
    }
}

impl<S> tower::Service<Request> for NoteRoute<S>
where
    S: tower::Service<Request, Response = Response>,
    S::Future: Unpin,
{
    type Response = Response;
    type Error = S::Error;
    type Future = NotedRoute<S::Future>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let route = request.extensions().get::<MatchedPath>().cloned();
        NotedRoute { inner: self.0.call(request), route }
    }
}

/// The future of `NoteRoute`: the route's, plus the template to hand on.
pub struct NotedRoute<F> {
    inner: F,
    route: Option<MatchedPath>,
}

impl<F, E> std::future::Future for NotedRoute<F>
where
    F: std::future::Future<Output = Result<Response, E>> + Unpin,
{
    type Output = Result<Response, E>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        let mut response = std::task::ready!(std::pin::Pin::new(&mut self.inner).poll(cx))?;
        if let Some(route) = self.route.take() {
            response.extensions_mut().insert(route);
        }
        std::task::Poll::Ready(Ok(response))
    }
}

/// `GET /metrics`: Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "Operations", responses((status = 200, description = "Prometheus text format"), crate::api::FrontErrors))]
pub async fn serve_metrics(State(app): State<AppState>) -> Response {
    refresh_gauges(&app).await;
    let body = recorder().render();
    ([(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"))], body).into_response()
}

/// Sets the gauges read at scrape time: operations by state and kind and
/// leases held (from counts the store keeps as it writes, so a scrape reads
/// a handful of rows, never the operations), and this node's waiting long-polls.
async fn refresh_gauges(app: &AppState) {
    match app.store.count_operations().await {
        Ok(counts) => recorder().set_operation_counts(counts.into_iter().map(|c| (c.state, c.kind, c.count)).collect()),
        Err(e) => tracing::warn!(error = %e, "metrics: cannot read operation counts"),
    }
    match app.store.count_leases_held().await {
        Ok(held) => metrics::gauge!("longrun_leases_held").set(held as f64),
        Err(e) => tracing::warn!(error = %e, "metrics: cannot count leases"),
    }
    metrics::gauge!("longrun_waiting_operations").set(app.waiters.watched() as f64);
}

/// `GET /readyz`: ready when the store answers (and so has migrated).
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "Operations",
    responses(
        (status = 200, description = "Ready"),
        (status = 503, description = "The store is unreachable", headers(("Retry-After" = i32))),
        crate::api::FrontErrors,
    )
)]
pub async fn readyz(State(app): State<AppState>) -> Response {
    let probe = OperationId::from_uuid(uuid::Uuid::nil());
    match app.store.get_operation(probe).await {
        Ok(_) => (StatusCode::OK, axum::Json(serde_json::json!({"status": "ready"}))).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            let body = serde_json::json!({"status": "unavailable", "reason": "the store does not answer"});
            (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "2")], axum::Json(body)).into_response()
        }
    }
}
