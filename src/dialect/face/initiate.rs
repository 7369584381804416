//! Face's initiating calls (SPEC §2.5): Snapshot - Take and Snapshot - Apply.
//! Each starts an operation in the caller's account and answers as Face
//! does: 202, no body, `Operation-Location: /operations/{id}`.
//! <https://learn.microsoft.com/rest/api/faceapi/snapshot/take>

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use uuid::Uuid;

use super::wire::{ApplySnapshotRequest, SnapshotObjectType, TakeSnapshotRequest};
use super::{Error, caller};
use crate::http::body::UnreadBody;
use crate::http::error::CoreError;
use crate::model::{KeyScope, Kind, NewOperation, OperationId, Role, Scope};
use crate::service::auth::Principal;
use crate::service::operations;
use crate::service::state::AppState;

/// Snapshot - Take (emulated).
#[utoipa::path(
    post,
    path = "/face/v1.0/snapshots",
    tag = "Face",
    operation_id = "Snapshot_Take",
    request_body(content = super::wire::TakeSnapshotRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Accepted", headers(("Operation-Location" = String))),
        (status = 400, description = "Malformed request", body = super::wire::ApiError),
        (status = 403, description = "The key lacks the role or scope", body = super::wire::ApiError),
        super::CommonErrors, super::WriteErrors, super::BodyErrors,
    ),
    security(("subscriptionKey" = []))
)]
pub async fn take_snapshot(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: UnreadBody,
) -> Result<Response, Error> {
    let caller = caller(&app, &headers).await?;
    caller.require(Role::Produce)?;
    let request: TakeSnapshotRequest = body.read_json("BadArgument").await?;
    check_object_id(&request.object_id)?;
    if request.apply_scope.is_empty() {
        return Err(bad("applyScope must list at least one subscription id.").into());
    }
    if request.user_data.as_ref().is_some_and(|d| d.len() > 16 * 1024) {
        return Err(bad("userData is longer than 16 KB.").into());
    }
    let mut properties = json!({
        "type": request.object_type,
        "objectId": request.object_id,
        "applyScope": request.apply_scope,
    });
    if let Some(user_data) = request.user_data {
        properties["userData"] = user_data.into();
    }
    // The snapshot is named after the operation taking it (Snapshot - Get
    // finds one from the other).
    start(&app, &caller, "takeSnapshot", properties, |id| format!("/snapshots/{id}")).await
}

/// Snapshot - Apply (emulated).
#[utoipa::path(
    post,
    path = "/face/v1.0/snapshots/{snapshotId}/apply",
    tag = "Face",
    operation_id = "Snapshot_Apply",
    params(("snapshotId" = String, Path, format = Uuid)),
    request_body(content = super::wire::ApplySnapshotRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Accepted", headers(("Operation-Location" = String))),
        (status = 400, description = "Malformed request", body = super::wire::ApiError),
        (status = 403, description = "The key lacks the role or scope", body = super::wire::ApiError),
        super::CommonErrors, super::WriteErrors, super::BodyErrors,
    ),
    security(("subscriptionKey" = []))
)]
pub async fn apply_snapshot(
    State(app): State<AppState>,
    Path(snapshot_id): Path<String>,
    headers: HeaderMap,
    body: UnreadBody,
) -> Result<Response, Error> {
    let caller = caller(&app, &headers).await?;
    caller.require(Role::Produce)?;
    let snapshot = Uuid::try_parse(&snapshot_id).map_err(|_| bad("Invalid snapshotId: it must be a UUID."))?;
    let request: ApplySnapshotRequest = body.read_json("BadArgument").await?;
    check_object_id(&request.object_id)?;
    let object_type = snapshot_type(&app, &caller, snapshot).await?;
    let properties = json!({
        "snapshotId": snapshot,
        "objectId": request.object_id,
        "type": object_type,
        "mode": "CreateNew",
    });
    let target = format!("/{}/{}", object_type.collection(), request.object_id);
    start(&app, &caller, "applySnapshot", properties, |_| target).await
}

/// The object type of a snapshot this caller took, from its Snapshot - Take;
/// person groups (the common case) stand for a snapshot longrun did not
/// see taken, whose type only its producer knows.
async fn snapshot_type(app: &AppState, caller: &Principal, snapshot: Uuid) -> Result<SnapshotObjectType, Error> {
    let id = OperationId::from_uuid(snapshot);
    let take = operations::get(app.store.as_ref(), &app.policy, caller, id, |_, kind| kind.as_ref() == "takeSnapshot");
    let recorded = match take.await {
        Ok(op) => super::resources::property(&op, "type"),
        Err(CoreError::NoSuchOperation { .. } | CoreError::OperationExpired { .. }) => None,
        Err(other) => return Err(other.into()),
    };
    Ok(recorded.unwrap_or(SnapshotObjectType::PersonGroup))
}

async fn start(
    app: &AppState,
    caller: &Principal,
    kind: &str,
    properties: serde_json::Value,
    resource_location: impl FnOnce(OperationId) -> String,
) -> Result<Response, Error> {
    let KeyScope::One(scope @ Scope::Account(_)) = &caller.scope else {
        return Err(CoreError::Forbidden {
            message: "Starting a Face operation needs a key bound to one account (accounts/{name}).".into(),
        }
        .into());
    };
    let request = NewOperation {
        scope: scope.clone(),
        kind: Kind::parse(kind).expect("a valid literal kind"),
        resource_location: None,
        details_location: None,
        properties: properties.as_object().cloned(),
        script: None,
    };
    let op = app.start_emulated(caller, request, resource_location).await?;
    let mut headers = HeaderMap::new();
    let location = format!("/operations/{}", op.id);
    headers.insert("operation-location", HeaderValue::from_str(&location).expect("a path"));
    headers.insert(header::RETRY_AFTER, HeaderValue::from(app.retry_after));
    Ok((StatusCode::ACCEPTED, headers).into_response())
}

/// Face ids: lowercase letters, digits, '-' and '_', at most 64.
pub(super) fn check_object_id(id: &str) -> Result<(), CoreError> {
    let ok = (1..=64).contains(&id.len())
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok { Ok(()) } else { Err(bad("Invalid objectId: use 1-64 lowercase letters, digits, '-' or '_'.")) }
}

fn bad(message: &str) -> CoreError {
    CoreError::BadRequest { code: "BadArgument", message: message.to_owned(), target: None }
}
