//! Face snapshot dialect (seed 002, SPEC §2.3): operation status under both
//! `/face/v1.0-preview` (the seed) and `/face/v1.0` (what the Python SDK
//! calls), keyed by `Ocp-Apim-Subscription-Key`. Translate only.

mod error;
pub(crate) mod initiate;
pub(crate) mod resources;
pub(crate) mod wire;

pub use error::{BodyErrors, CommonErrors, Error, WriteErrors};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::http::error::CoreError;
use crate::http::headers::RequestHeaders;
use crate::model::{Operation, OperationId, Scope, State as OpState};
use crate::service::auth::Principal;
use crate::service::state::AppState;

/// The header Face clients send their key in.
pub const KEY_HEADER: &str = "Ocp-Apim-Subscription-Key";

/// The status URL handed out for a Face operation (the seed's base path).
pub fn operation_path(id: OperationId) -> String {
    format!("/face/v1.0-preview/operations/{id}")
}

/// Face routes, mounted at the root.
pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    for base in ["/face/v1.0-preview", "/face/v1.0"] {
        router = router
            .route(&format!("{base}/operations/{{operation_id}}"), get(get_operation_status))
            .route(&format!("{base}/snapshots"), post(initiate::take_snapshot))
            .route(&format!("{base}/snapshots/{{snapshot_id}}"), get(resources::get_snapshot))
            .route(&format!("{base}/snapshots/{{snapshot_id}}/apply"), post(initiate::apply_snapshot))
            .route(&format!("{base}/persongroups/{{object_id}}"), get(resources::get_person_group))
            .route(&format!("{base}/largepersongroups/{{object_id}}"), get(resources::get_large_person_group))
            .route(&format!("{base}/facelists/{{object_id}}"), get(resources::get_face_list))
            .route(&format!("{base}/largefacelists/{{object_id}}"), get(resources::get_large_face_list));
    }
    router
}

/// The caller, from `Ocp-Apim-Subscription-Key`.
async fn caller(app: &AppState, headers: &HeaderMap) -> Result<Principal, CoreError> {
    let key = headers.get(KEY_HEADER).and_then(|v| v.to_str().ok());
    app.key_caller(key).await
}

/// Snapshot - Get Operation Status (also served under `/face/v1.0-preview`).
#[utoipa::path(
    get,
    path = "/face/v1.0/operations/{operationId}",
    tag = "Face",
    operation_id = "Snapshot_GetOperationStatus",
    params(("operationId" = String, Path, format = Uuid), ("If-None-Match" = Option<String>, Header)),
    responses(
        (status = 200, description = "The operation status", body = wire::OperationStatus),
        (status = 304, description = "Not modified since the ETag in If-None-Match"),
        (status = 400, description = "Malformed request", body = wire::ApiError),
        (status = 404, description = "No such operation in the caller's reach", body = wire::ApiError),
        CommonErrors,
    ),
    security(("subscriptionKey" = []))
)]
pub(crate) async fn get_operation_status(
    State(app): State<AppState>,
    Path(operation_id): Path<String>,
    RequestHeaders(headers): RequestHeaders,
) -> Result<Response, Error> {
    let caller = caller(&app, &headers).await?;
    let id = OperationId::parse(&operation_id).ok_or_else(|| {
        CoreError::bad_request(
            "BadArgument",
            "operationId",
            format!("Invalid operationId '{operation_id}': it must be a UUID."),
        )
    })?;
    let op = super::read_status(&app, &headers, &caller, id, |scope, _| matches!(scope, Scope::Account(_))).await?;
    if let Some(unchanged) = super::not_modified(&headers, &op, app.retry_after) {
        return Ok(unchanged);
    }
    Ok(super::json(StatusCode::OK, super::status_headers(&op, app.retry_after), &render(&op)))
}

/// Model → Face `OperationStatus`. Face knows no Canceled or partial
/// success: Canceled is `failed` with a message; CompleteWithErrors is
/// `succeeded` (its work is done; the message carries what went wrong).
fn render(op: &Operation) -> wire::OperationStatus {
    let status = match op.state {
        OpState::NotStarted => "notStarted",
        OpState::Running => "running",
        OpState::Succeeded | OpState::CompleteWithErrors => "succeeded",
        OpState::Failed | OpState::Canceled => "failed",
    };
    let message = match op.state {
        OpState::Canceled => Some("The operation was canceled.".to_owned()),
        _ => op.error.as_ref().map(|e| e.message.clone()),
    };
    wire::OperationStatus {
        status,
        created_time: op.created_at.to_rfc3339_ticks(),
        last_action_time: op.last_action_at.to_rfc3339_ticks(),
        finished_time: op.finished_at.map(|t| t.to_rfc3339_ticks()),
        resource_location: op.resource_location.clone(),
        message,
    }
}

/// Renders any core error as a Face `APIError` (the router's fallbacks).
pub fn error_response(core: CoreError) -> Response {
    Error(core).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Kind, NewOperation, OperationError, Timestamp};
    use serde_json::json;

    fn sample(state: OpState) -> Operation {
        let request = NewOperation {
            scope: Scope::parse("accounts/contoso").unwrap(),
            kind: Kind::parse("takeSnapshot").unwrap(),
            resource_location: Some("/snapshots/e58b3f08-1e8b-4165-81df-aa9858f233dc".into()),
            details_location: None,
            properties: None,
            script: None,
        };
        let id = OperationId::parse("a63a3bdd-a1db-4d05-87b8-dbad6850062a").unwrap();
        let mut op = Operation::new(id, request, Timestamp::parse_rfc3339("2018-12-25T11:41:02.2331413Z").unwrap());
        op.state = state;
        op.last_action_at = Timestamp::parse_rfc3339("2018-12-25T11:51:27.8705696Z").unwrap();
        op
    }

    /// The seed's sample (plus `finishedTime`, which a terminal status carries).
    #[test]
    fn renders_the_seed_sample() {
        let mut op = sample(OpState::Succeeded);
        op.finished_at = Some(op.last_action_at);
        assert_eq!(
            serde_json::to_value(render(&op)).unwrap(),
            json!({
              "status": "succeeded",
              "createdTime": "2018-12-25T11:41:02.2331413Z",
              "lastActionTime": "2018-12-25T11:51:27.8705696Z",
              "finishedTime": "2018-12-25T11:51:27.8705696Z",
              "resourceLocation": "/snapshots/e58b3f08-1e8b-4165-81df-aa9858f233dc",
              "message": null
            })
        );
    }

    #[test]
    fn failures_and_cancellations_carry_a_message() {
        let mut failed = sample(OpState::Failed);
        failed.error =
            Some(OperationError { code: "X".into(), message: "source changed".into(), target: None, details: None });
        assert_eq!((render(&failed).status, render(&failed).message.as_deref()), ("failed", Some("source changed")));
        let canceled = render(&sample(OpState::Canceled));
        assert_eq!(canceled.status, "failed");
        assert!(canceled.message.unwrap().contains("canceled"));
    }
}
