//! Google's `google.longrunning.Operations` dialect (AIP-151, SPEC §2.6)
//! over HTTP/JSON: the REST mapping google-api-core's REST transport
//! builds, `/v1/{scope}/operations…`, with bearer keys or tokens. Names
//! are `{scope}/operations/{id}`. Translate only.

mod code;
mod error;
mod filter;
pub mod grpc;
pub(crate) mod rest;
pub(crate) mod wire;

pub use error::{CommonErrors, Error, WriteErrors};

use std::sync::Arc;

use axum::Router;
use serde_json::{Map, Value, json};

use crate::http::error::CoreError;
use crate::model::{Operation, OperationId, Scope, State as OpState};
use crate::service::auth::Principal;
use crate::service::paging::{decode_token, encode_token};
use crate::service::state::AppState;
use crate::service::{operations, watch};
use crate::store::ListFilter;

/// A page when the page size is 0 or absent.
const DEFAULT_PAGE: u32 = 50;
/// The largest page; a larger page size is read as this (AIP-158).
const MAX_PAGE: u32 = 1000;

/// The scope collections a name can start with.
pub const COLLECTIONS: [&str; 3] = ["projects", "tenants", "accounts"];

/// Google routes, mounted at the root.
pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    for collection in COLLECTIONS {
        router = router
            .route(&format!("/v1/{collection}/{{scope_name}}/operations"), axum::routing::get(rest::list_operations))
            .route(
                &format!("/v1/{collection}/{{scope_name}}/operations/{{id_action}}"),
                axum::routing::get(rest::get_operation).delete(rest::delete_operation).post(rest::operation_action),
            );
    }
    router
}

/// Whether `path` is one of Google's (`/v1/{collection}/…`).
pub fn owns_path(path: &str) -> bool {
    // Every request's path passes here (metrics labels): no allocation.
    let collection = path.strip_prefix("/v1/").and_then(|rest| rest.split_once('/')).map(|(first, _)| first);
    collection.is_some_and(|c| COLLECTIONS.contains(&c))
}

/// The name of an operation: `{scope}/operations/{id}`.
pub fn operation_name(op: &Operation) -> String {
    format!("{}/operations/{}", op.scope, op.id)
}

/// GetOperation: the operation `id` of `scope`; another scope's reads as missing.
pub(crate) async fn get(
    app: &AppState,
    caller: &Principal,
    scope: &Scope,
    id: OperationId,
) -> Result<Arc<Operation>, CoreError> {
    operations::get(app.store.as_ref(), &app.policy, caller, id, |s, _| s == scope).await
}

/// CancelOperation: `get`'s visibility, then the native cancel.
pub(crate) async fn cancel(
    app: &AppState,
    caller: &Principal,
    scope: &Scope,
    id: OperationId,
) -> Result<(), CoreError> {
    get(app, caller, scope, id).await?;
    operations::cancel(app.store.as_ref(), &app.policy, caller, id).await.map(drop)
}

/// DeleteOperation: a finished operation of `scope` goes now.
pub(crate) async fn delete(
    app: &AppState,
    caller: &Principal,
    scope: &Scope,
    id: OperationId,
) -> Result<(), CoreError> {
    operations::delete_finished(app.store.as_ref(), &app.policy, caller, id, |s, _| s == scope).await
}

/// WaitOperation: the operation once done, or as it is after `up_to`.
pub(crate) async fn wait(
    app: &AppState,
    caller: &Principal,
    scope: &Scope,
    id: OperationId,
    up_to: std::time::Duration,
) -> Result<Arc<Operation>, CoreError> {
    let wait = watch::Wait { up_to, known: None, stopping: &app.stopping, waiters: &app.waiters };
    watch::get_when_done(app.store.as_ref(), &app.policy, caller, id, |s, _| s == scope, wait).await
}

/// ListOperations' request, whichever transport carried it.
#[derive(Debug, Default)]
pub(crate) struct ListRequest {
    /// `done = …`, `state = …`, `kind = …` joined by AND.
    pub filter: String,
    /// 0 for the default; negative is refused.
    pub page_size: i64,
    /// Empty for the first page.
    pub page_token: String,
}

/// A page of `scope`'s operations, newest first, and the token of the next
/// page (empty on the last). The token is the position of the last
/// operation read, so new operations never shift a listing in progress.
pub(crate) async fn list(
    app: &AppState,
    caller: &Principal,
    scope: Scope,
    request: &ListRequest,
) -> Result<(Vec<Operation>, String), CoreError> {
    let bad = |field: &str, message: String| CoreError::bad_request("InvalidArgument", field, message);
    let filter = filter::Filter::parse(&request.filter).map_err(|m| bad("filter", m))?;
    let limit = match request.page_size {
        ..0 => return Err(bad("pageSize", "the page size must not be negative".into())),
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE as i64) as u32,
    };
    let after = match request.page_token.as_str() {
        "" => None,
        token => Some(decode_token(token).ok_or_else(|| bad("pageToken", "invalid page token".into()))?),
    };
    let list = ListFilter {
        scope: caller.narrow(Some(scope), "list")?,
        state: filter.state,
        kind: filter.kind.clone(),
        after,
        limit,
        ..ListFilter::default()
    };
    let page = app.store.list_operations(&list).await?;
    let next = match page.last() {
        Some(last) if page.len() == limit as usize => encode_token(last.created_at, last.id),
        _ => String::new(),
    };
    Ok((page.into_iter().filter(|op| filter.admits(op)).collect(), next))
}

/// The scope and id of a name `{scope}/operations/{id}`.
pub(crate) fn parse_name(name: &str) -> Result<(Scope, OperationId), CoreError> {
    let (scope, id) = name.rsplit_once("/operations/").ok_or_else(|| {
        CoreError::bad_request("InvalidArgument", "name", format!("'{name}' is not {{scope}}/operations/{{id}}"))
    })?;
    Ok((parse_scope(scope)?, parse_id(id)?))
}

/// A scope: a name's prefix or a list's parent.
pub(crate) fn parse_scope(scope: &str) -> Result<Scope, CoreError> {
    Scope::parse(scope).map_err(|e| CoreError::bad_request("InvalidArgument", "name", e.to_string()))
}

/// An operation id: a name's last part.
pub(crate) fn parse_id(id: &str) -> Result<OperationId, CoreError> {
    OperationId::parse(id).ok_or_else(|| {
        CoreError::bad_request("InvalidArgument", "name", format!("'{id}' is not an operation id (a UUID)"))
    })
}

/// How an operation ended, in Google's terms.
pub(crate) enum Outcome {
    /// Not done yet.
    Pending,
    /// Done: what it made (`resourceLocation`, `properties`).
    Response(Map<String, Value>),
    /// Done with a `google.rpc.Status`: a failure or a cancel.
    Error {
        /// A `google.rpc.Code`.
        code: i32,
        /// The producer's message.
        message: String,
        /// Its `ErrorInfo.reason`.
        reason: String,
    },
}

/// The metadata `Struct`: state, progress, kind and times (present ones),
/// and a partial success's error.
pub(crate) fn metadata(op: &Operation) -> Map<String, Value> {
    let mut metadata = Map::new();
    metadata.insert("state".into(), op.state.as_str().into());
    if let Some(percent) = op.percent_complete {
        metadata.insert("percentComplete".into(), percent.into());
    }
    metadata.insert("kind".into(), op.kind.as_ref().into());
    metadata.insert("createTime".into(), op.created_at.to_rfc3339_ticks().into());
    metadata.insert("updateTime".into(), op.last_action_at.to_rfc3339_ticks().into());
    if let Some(at) = op.started_at {
        metadata.insert("startTime".into(), at.to_rfc3339_ticks().into());
    }
    if let Some(at) = op.finished_at {
        metadata.insert("endTime".into(), at.to_rfc3339_ticks().into());
    }
    if let (OpState::CompleteWithErrors, Some(e)) = (op.state, &op.error) {
        metadata.insert("partialError".into(), json!({"code": e.code, "message": e.message}));
    }
    metadata
}

/// A success (CompleteWithErrors too) is a response; a failure the
/// `google.rpc.Code` its producer's code names; a cancel CANCELLED.
pub(crate) fn outcome(op: &Operation) -> Outcome {
    match op.state {
        OpState::NotStarted | OpState::Running => Outcome::Pending,
        OpState::Succeeded | OpState::CompleteWithErrors => {
            let mut fields = Map::new();
            if let Some(location) = &op.resource_location {
                fields.insert("resourceLocation".into(), location.clone().into());
            }
            if let Some(properties) = &op.properties {
                fields.insert("properties".into(), Value::Object(properties.clone()));
            }
            Outcome::Response(fields)
        }
        OpState::Failed => {
            let (code, message) = op.error.as_ref().map_or(("", "The operation failed."), |e| (&e.code, &e.message));
            let reason = if code.is_empty() { "FAILED".into() } else { code::upper_snake(code) };
            Outcome::Error { code: code::of_producer(code), message: message.to_owned(), reason }
        }
        OpState::Canceled => Outcome::Error {
            code: code::CANCELLED,
            message: "The operation was canceled.".into(),
            reason: "CANCELLED".into(),
        },
    }
}

/// Model → `google.longrunning.Operation` (proto3 JSON).
pub fn render(op: &Operation) -> wire::Operation {
    let (error, response) = match outcome(op) {
        Outcome::Pending => (None, None),
        Outcome::Response(fields) => (None, Some(wire::AnyStruct::new(fields))),
        Outcome::Error { code, message, reason } => {
            (Some(wire::Status { code, message, details: vec![wire::ErrorInfo::new(reason)] }), None)
        }
    };
    wire::Operation {
        name: operation_name(op),
        metadata: wire::AnyStruct::new(metadata(op)),
        done: op.state.is_terminal(),
        error,
        response,
    }
}

/// Renders any core error in Google's envelope (the router's fallbacks).
pub fn error_response(core: CoreError) -> axum::response::Response {
    use axum::response::IntoResponse;
    Error(core).into_response()
}
