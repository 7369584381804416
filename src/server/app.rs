//! Wires the front-ends (native API, three dialects) to shared state and
//! serves them. `serve` takes an already-bound listener: tests bind
//! 127.0.0.1:0 and read the port before any request is made.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::api;
use crate::dialect::{devcenter, face, sphere};
use crate::http::error::CoreError;
use crate::server::limits::Limits;
use crate::service::state::AppState;
use axum::Router;
use axum::extract::Request;
use axum::response::Response;
use axum::routing::get;
use tokio::net::TcpListener;

/// How long a graceful shutdown waits for in-flight requests by default.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// How often key last-used times are written (one batch per node).
const KEY_USAGE_FLUSH: Duration = Duration::from_secs(30);

/// The whole HTTP surface: every route, each noting its template for the
/// access log and metrics (`Front` wraps all of it: `service`).
pub fn router(state: AppState) -> Router {
    crate::telemetry::metrics::handle();
    Router::new()
        .route("/openapi.json", get(crate::server::openapi::serve_document))
        .route("/readyz", get(crate::server::metrics::readyz))
        .route("/metrics", get(crate::server::metrics::serve_metrics))
        .merge(api::router())
        .merge(sphere::router())
        .merge(devcenter::router())
        .merge(face::router())
        .merge(crate::ui::router())
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(crate::server::metrics::NoteRoute::layer())
        .with_state(state)
}

/// The router as served: inside `Front` (ids, limits, panics, access log),
/// which wraps the router once, as a service, rather than through
/// `Router::layer`, which wraps (and per request clones and boxes) every
/// route. Bodies are read by the handlers themselves (`body::UnreadBody`).
pub fn service(
    state: AppState,
    limits: Arc<Limits>,
) -> impl tower::Service<Request, Response = Response, Error = std::convert::Infallible, Future: Send + 'static>
+ Clone
+ Send
+ 'static {
    crate::server::front::Front::new(router(state), limits)
}

/// Serves until `shutdown` resolves, then finishes in-flight requests
/// (for at most `SHUTDOWN_GRACE`), enforcing `limits` on every request.
/// Runs the node's background work (script steps) alongside.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    limits: Arc<Limits>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_grace(listener, state, limits, shutdown, SHUTDOWN_GRACE).await
}

/// `serve`, giving in-flight requests `grace` after `shutdown` resolves.
pub async fn serve_with_grace(
    listener: TcpListener,
    state: AppState,
    limits: Arc<Limits>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: std::time::Duration,
) -> std::io::Result<()> {
    let background = tokio::spawn(crate::worker::runner::run(state.store.clone(), state.policy.clone()));
    let (waiters, feed) = (state.waiters.clone(), state.store.feed().subscribe());
    let dispatcher = tokio::spawn(async move { waiters.run(feed).await });
    let (forgetting, store) = (limits.clone(), state.store.clone());
    let housekeeping = tokio::spawn(async move {
        let mut every = tokio::time::interval(KEY_USAGE_FLUSH);
        loop {
            every.tick().await;
            forgetting.forget_idle();
            if let Err(e) = crate::service::auth::usage::flush(store.as_ref()).await {
                tracing::warn!(error = %e, "cannot record when keys were last used; will retry");
            }
        }
    });
    let store = state.store.clone();
    let stopping = state.stopping.clone();
    let shutdown = {
        let stopping = stopping.clone();
        async move {
            shutdown.await;
            stopping.cancel();
        }
    };
    // One router shared by every connection (`axum::serve` with a plain
    // `Router` rebuilt its route table per connection: ~14 KiB each,
    // measured with heaptrack, BENCHMARKS.md long-poll). Graceful, but
    // bounded by `grace`: a stuck client or an endless stream does not hold the stop.
    let served = crate::server::accept::serve(listener, service(state, limits), shutdown, grace).await;
    background.abort();
    dispatcher.abort();
    housekeeping.abort();
    if let Err(e) = crate::service::auth::usage::flush(store.as_ref()).await {
        tracing::warn!(error = %e, "cannot record when keys were last used");
    }
    served
}

async fn unknown_route(request: Request) -> Response {
    let path = request.uri().path().to_owned();
    crate::dialect::error_for_path(&path, CoreError::NoSuchRoute { path: path.clone() })
}

async fn method_not_allowed(request: Request) -> Response {
    let path = request.uri().path().to_owned();
    crate::dialect::error_for_path(&path, CoreError::MethodNotAllowed { method: request.method().to_string() })
}
