//! The client-facing dialects (SPEC §2): pure translations of the model to
//! three Azure wire formats. A dialect parses its URL and credentials, calls
//! `service::operations`, and renders the answer; it stores nothing and decides nothing.
//!
//! This file holds what all of them share: conditional GETs, `Retry-After`,
//! JSON responses, and each operation's dialect URL.

pub mod devcenter;
pub mod face;
pub mod google;
pub mod sphere;

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Serialize;

use crate::http::error::CoreError;
use crate::http::headers::IfNoneMatch;
use crate::model::{Kind, Operation, OperationId, Scope};
use crate::service::auth::Principal;
use crate::service::state::AppState;
use crate::service::watch;

/// The api-version longrun puts in the Dev Center URLs it hands out.
pub const DEVCENTER_API_VERSION: &str = "2025-02-01";

/// Which front-end a request path belongs to, by its prefix: the one place
/// that tells them apart (envelopes, metric labels).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrontEnd {
    /// `/v2/…`
    Sphere,
    /// `/projects/…`
    DevCenter,
    /// `/face/…`
    Face,
    /// `/v1/{projects|tenants|accounts}/…`, and its gRPC methods
    /// (`/google.longrunning.Operations/…`, on the gRPC listener)
    Google,
    /// `/v1/…`
    Native,
    /// Everything else: health, metrics, the document, the dashboard.
    Service,
}

impl FrontEnd {
    /// The front-end `path` belongs to.
    pub fn of_path(path: &str) -> FrontEnd {
        if path.starts_with("/v2/") {
            FrontEnd::Sphere
        } else if path.starts_with("/projects/") {
            FrontEnd::DevCenter
        } else if path.starts_with("/face/") {
            FrontEnd::Face
        } else if google::owns_path(path) || google::grpc::owns_path(path) {
            FrontEnd::Google
        } else if path.starts_with("/v1/") {
            FrontEnd::Native
        } else {
            FrontEnd::Service
        }
    }

    /// Its name as a metric label.
    pub fn label(self) -> &'static str {
        match self {
            FrontEnd::Sphere => "sphere",
            FrontEnd::DevCenter => "devcenter",
            FrontEnd::Face => "face",
            FrontEnd::Google => "google",
            FrontEnd::Native => "native",
            FrontEnd::Service => "service",
        }
    }
}

/// `core` in the envelope of the front-end `path` belongs to: refusals made
/// before or around routing (unknown routes, limits, bad heads, panics).
/// The native API and the service routes share Azure.Core's envelope.
pub fn error_for_path(path: &str, core: CoreError) -> Response {
    match FrontEnd::of_path(path) {
        FrontEnd::Sphere => sphere::error_response(path, core),
        FrontEnd::Face => face::error_response(core),
        FrontEnd::Google => google::error_response(core),
        FrontEnd::DevCenter | FrontEnd::Native | FrontEnd::Service => devcenter::error_response(core),
    }
}

/// Refuses, as an unknown route, a resource the emulator serves only in
/// demo mode: without `--demo` the resources belong to the real service.
pub fn demo_only(app: &AppState, uri: &axum::http::Uri) -> Result<(), CoreError> {
    if app.demo { Ok(()) } else { Err(CoreError::NoSuchRoute { path: uri.path().to_owned() }) }
}

/// A JSON body with the `charset` Azure services send.
pub fn json(status: StatusCode, headers: HeaderMap, body: &impl Serialize) -> Response {
    json_as(status, headers, body, "application/json; charset=utf-8")
}

/// A JSON body with an explicit content type (e.g. `application/problem+json`).
pub fn json_as(
    status: StatusCode,
    mut headers: HeaderMap,
    body: &impl Serialize,
    content_type: &'static str,
) -> Response {
    // Room for a status body up front: `to_vec` starts at 128 bytes and
    // grows (copying) twice on the way to a typical 300.
    let mut bytes = Vec::with_capacity(512);
    serde_json::to_writer(&mut bytes, body).expect("wire types always serialize");
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response(status, headers, axum::body::Body::from(bytes))
}

/// A response whose headers are `headers` itself (a tuple's
/// `into_response` copies them, one by one, into a new map).
fn response(status: StatusCode, headers: HeaderMap, body: axum::body::Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// `ETag` always; `Retry-After` while the operation is not terminal, so
/// pollers back off instead of spinning.
pub fn status_headers(op: &Operation, retry_after: u32) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, HeaderValue::try_from(op.etag()).expect("digits and quotes"));
    if !op.state.is_terminal() {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    }
    headers
}

/// A 304 when `If-None-Match` names the current ETag (or `*`): a poll that
/// finds nothing new costs no body.
pub fn not_modified(request: &HeaderMap, op: &Operation, retry_after: u32) -> Option<Response> {
    let hit = IfNoneMatch::of(request)?.matches(&op.etag());
    hit.then(|| response(StatusCode::NOT_MODIFIED, status_headers(op, retry_after), axum::body::Body::empty()))
}

/// Reads the operation a status GET asks for, waiting first when the
/// client sent `Prefer: wait=N` (long-poll; with `If-None-Match`, until the
/// operation differs from that ETag). Without the header this is a plain read,
/// exactly as the seeds describe.
pub async fn read_status(
    app: &AppState,
    headers: &HeaderMap,
    caller: &Principal,
    id: OperationId,
    visible: impl Fn(&Scope, &Kind) -> bool,
) -> Result<Arc<Operation>, CoreError> {
    let wait = watch::prefer_wait(headers).map(|up_to| watch::Wait {
        up_to,
        known: IfNoneMatch::of(headers),
        stopping: &app.stopping,
        waiters: &app.waiters,
    });
    watch::get_or_wait(app.store.as_ref(), &app.policy, caller, id, visible, wait).await
}

/// The URL a client should poll for `op`, in the dialect its scope belongs to.
pub fn operation_location(op: &Operation) -> String {
    match &op.scope {
        Scope::Tenant(tenant) => sphere::operation_path(tenant, op),
        Scope::Project(project) => devcenter::operation_path(project, op.id),
        Scope::Account(_) => face::operation_path(op.id),
    }
}
