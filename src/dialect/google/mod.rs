//! Google's `google.longrunning.Operations` dialect (AIP-151, SPEC §2.6)
//! over HTTP/JSON: the REST mapping google-api-core's REST transport
//! builds, `/v1/{scope}/operations…`, with bearer keys or tokens. Names
//! are `{scope}/operations/{id}`. Translate only.

mod code;
mod error;
mod filter;
pub(crate) mod rest;
pub(crate) mod wire;

pub use error::{CommonErrors, Error, WriteErrors};

use axum::Router;
use axum::routing::get;
use serde_json::{Map, Value, json};

use crate::model::{Operation, State as OpState};
use crate::service::state::AppState;

/// The scope collections a name can start with.
pub const COLLECTIONS: [&str; 3] = ["projects", "tenants", "accounts"];

/// Google routes, mounted at the root.
pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    for collection in COLLECTIONS {
        router =
            router.route(&format!("/v1/{collection}/{{scope_name}}/operations"), get(rest::list_operations)).route(
                &format!("/v1/{collection}/{{scope_name}}/operations/{{id_action}}"),
                get(rest::get_operation).delete(rest::delete_operation).post(rest::operation_action),
            );
    }
    router
}

/// Whether `path` is one of Google's (`/v1/{collection}/…`).
pub fn owns_path(path: &str) -> bool {
    COLLECTIONS.iter().any(|c| path.strip_prefix("/v1/").is_some_and(|rest| rest.starts_with(&format!("{c}/"))))
}

/// The name of an operation: `{scope}/operations/{id}`.
pub fn operation_name(op: &Operation) -> String {
    format!("{}/operations/{}", op.scope, op.id)
}

/// Model → `google.longrunning.Operation`. Metadata carries the state,
/// progress, kind and times; a success (CompleteWithErrors too) the
/// response; a failure its `google.rpc.Status`, a cancel CANCELLED.
pub fn render(op: &Operation) -> wire::Operation {
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
    let status = |code: i32, message: String, reason: String| wire::Status {
        code,
        message,
        details: vec![wire::ErrorInfo::new(reason)],
    };
    let (error, response) = match op.state {
        OpState::NotStarted | OpState::Running => (None, None),
        OpState::Succeeded => (None, Some(response(op))),
        OpState::CompleteWithErrors => {
            if let Some(e) = &op.error {
                metadata.insert("partialError".into(), json!({"code": e.code, "message": e.message}));
            }
            (None, Some(response(op)))
        }
        OpState::Failed => {
            let (code, message) = op.error.as_ref().map_or(("", "The operation failed."), |e| (&e.code, &e.message));
            let reason = if code.is_empty() { "FAILED".into() } else { code::upper_snake(code) };
            (Some(status(code::of_producer(code), message.to_owned(), reason)), None)
        }
        OpState::Canceled => {
            (Some(status(code::CANCELLED, "The operation was canceled.".into(), "CANCELLED".into())), None)
        }
    };
    wire::Operation {
        name: operation_name(op),
        metadata: wire::AnyStruct::new(metadata),
        done: op.state.is_terminal(),
        error,
        response,
    }
}

/// What a success made, as a `Struct`: `resourceLocation`, `properties`.
fn response(op: &Operation) -> wire::AnyStruct {
    let mut fields = Map::new();
    if let Some(location) = &op.resource_location {
        fields.insert("resourceLocation".into(), location.clone().into());
    }
    if let Some(properties) = &op.properties {
        fields.insert("properties".into(), Value::Object(properties.clone()));
    }
    wire::AnyStruct::new(fields)
}

/// Renders any core error in Google's envelope (the router's fallbacks).
pub fn error_response(core: crate::http::error::CoreError) -> axum::response::Response {
    use axum::response::IntoResponse;
    Error(core).into_response()
}
