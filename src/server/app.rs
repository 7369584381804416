//! The router: the one file that names every front-end's routes, and the
//! service that wraps it in the front middleware.

use std::sync::Arc;

use crate::api;
use crate::dialect::{devcenter, face, sphere};
use crate::http::error::CoreError;
use crate::server::front::Front;
use crate::server::limits::Limits;
use crate::service::state::AppState;
use axum::Router;
use axum::extract::Request;
use axum::response::Response;
use axum::routing::get;

/// The whole HTTP surface: every route, each noting its template for the
/// access log and metrics (`Front` wraps all of it: `service`).
pub fn router(state: AppState) -> Router {
    crate::telemetry::metrics::recorder();
    Router::new()
        .route("/openapi.json", get(crate::server::openapi::serve_document))
        .route("/readyz", get(crate::server::metrics::readyz))
        .route("/metrics", get(crate::server::metrics::serve_metrics))
        .merge(api::router())
        .merge(sphere::router())
        .merge(devcenter::router())
        .merge(face::router())
        .merge(crate::dialect::google::router())
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
pub fn service(state: AppState, limits: Arc<Limits>) -> Front<Router> {
    Front::new(router(state), limits)
}

/// The gRPC listener's service: google.longrunning.Operations inside the
/// same `Front` as HTTP, its refusals rendered as gRPC statuses.
pub fn grpc_service(state: AppState, limits: Arc<Limits>) -> Front<Router> {
    let router = crate::dialect::google::grpc::router(state).route_layer(crate::server::metrics::NoteRoute::layer());
    Front::with_envelope(router, limits, crate::dialect::google::grpc::error_response)
}

async fn unknown_route(request: Request) -> Response {
    let path = request.uri().path().to_owned();
    crate::dialect::error_for_path(&path, CoreError::NoSuchRoute { path: path.clone() })
}

async fn method_not_allowed(request: Request) -> Response {
    let path = request.uri().path().to_owned();
    crate::dialect::error_for_path(&path, CoreError::MethodNotAllowed { method: request.method().to_string() })
}
