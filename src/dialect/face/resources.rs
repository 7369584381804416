//! The objects Face's emulated snapshot calls make, served in demo mode
//! only (`serve --demo`): a taken snapshot (Snapshot - Get) and the object
//! a snapshot was applied to (PersonGroup - Get and its three siblings), so
//! an SDK that fetches `resourceLocation` after a success finds it.
//! <https://learn.microsoft.com/rest/api/faceapi/snapshot/get>

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;

use super::wire::{Snapshot, SnapshotObjectType, SnapshotTarget};
use super::{Error, caller, initiate::check_object_id};
use crate::dialect::{demo_only, json};
use crate::http::error::CoreError;
use crate::model::{KeyScope, Operation, OperationId, Scope};
use crate::service::demo;
use crate::service::state::AppState;

/// Snapshot - Get (demo mode).
#[utoipa::path(
    get,
    path = "/face/v1.0/snapshots/{snapshotId}",
    tag = "Face",
    operation_id = "Snapshot_Get",
    params(("snapshotId" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "The snapshot, once its take succeeded", body = super::wire::Snapshot),
        (status = 400, description = "Malformed request", body = super::wire::ApiError),
        (status = 404, description = "No such snapshot, or not in demo mode", body = super::wire::ApiError),
        super::CommonErrors,
    ),
    security(("subscriptionKey" = []))
)]
pub async fn get_snapshot(
    State(app): State<AppState>,
    Path(snapshot_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, Error> {
    demo_only(&app, &uri)?;
    let caller = caller(&app, &headers).await?;
    let id = OperationId::parse(&snapshot_id)
        .ok_or_else(|| CoreError::bad_request("BadArgument", "snapshotId", "Invalid snapshotId: it must be a UUID."))?;
    let not_found = || CoreError::NoSuchResource {
        code: "SnapshotNotFound",
        message: format!("Snapshot {snapshot_id} is not found."),
    };
    let take = demo::made_by(app.store.as_ref(), &app.policy, &caller, id, "takeSnapshot").await?;
    let take = take.ok_or_else(not_found)?;
    let snapshot = Snapshot {
        id: id.uuid(),
        account: take.scope.to_string(),
        object_type: property(&take, "type").ok_or_else(not_found)?,
        apply_scope: property(&take, "applyScope").unwrap_or_default(),
        user_data: property(&take, "userData"),
        created_time: take.created_at.to_rfc3339_ticks(),
        last_update_time: take.finished_at.unwrap_or(take.last_action_at).to_rfc3339_ticks(),
    };
    Ok(json(StatusCode::OK, HeaderMap::new(), &snapshot))
}

/// A property the initiator recorded on the operation, typed.
pub(super) fn property<T: serde::de::DeserializeOwned>(op: &Operation, name: &str) -> Option<T> {
    let value = op.properties.as_ref()?.get(name)?;
    T::deserialize(value).ok()
}

/// Declares the Get of one type of snapshot target.
macro_rules! target_get {
    ($name:ident, $type:ident, $path:literal, $param:literal, $operation:literal) => {
        #[doc = concat!("Get of a `", stringify!($type), "` a snapshot was applied to (demo mode).")]
        #[utoipa::path(
            get,
            path = $path,
            tag = "Face",
            operation_id = $operation,
            params(($param = String, Path, pattern = "^[a-z0-9-_]{1,64}$")),
            responses(
                (status = 200, description = "The object, once a snapshot was applied to it", body = super::wire::SnapshotTarget),
                (status = 400, description = "Malformed request", body = super::wire::ApiError),
                (status = 404, description = "No such object, or not in demo mode", body = super::wire::ApiError),
                super::CommonErrors,
            ),
            security(("subscriptionKey" = []))
        )]
        pub async fn $name(
            State(app): State<AppState>,
            Path(object_id): Path<String>,
            uri: Uri,
            headers: HeaderMap,
        ) -> Result<Response, Error> {
            get_target(&app, &uri, &headers, SnapshotObjectType::$type, object_id).await
        }
    };
}

target_get!(
    get_person_group,
    PersonGroup,
    "/face/v1.0/persongroups/{personGroupId}",
    "personGroupId",
    "PersonGroup_Get"
);
target_get!(
    get_large_person_group,
    LargePersonGroup,
    "/face/v1.0/largepersongroups/{largePersonGroupId}",
    "largePersonGroupId",
    "LargePersonGroup_Get"
);
target_get!(get_face_list, FaceList, "/face/v1.0/facelists/{faceListId}", "faceListId", "FaceList_Get");
target_get!(
    get_large_face_list,
    LargeFaceList,
    "/face/v1.0/largefacelists/{largeFaceListId}",
    "largeFaceListId",
    "LargeFaceList_Get"
);

/// The object `object_id` of `object_type`: it exists once a snapshot
/// apply targeting it succeeded in the caller's account.
async fn get_target(
    app: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    object_type: SnapshotObjectType,
    object_id: String,
) -> Result<Response, Error> {
    demo_only(app, uri)?;
    let caller = caller(app, headers).await?;
    check_object_id(&object_id)?;
    let (code, noun) = match object_type {
        SnapshotObjectType::PersonGroup => ("PersonGroupNotFound", "Person group"),
        SnapshotObjectType::LargePersonGroup => ("LargePersonGroupNotFound", "Large person group"),
        SnapshotObjectType::FaceList => ("FaceListNotFound", "Face list"),
        SnapshotObjectType::LargeFaceList => ("LargeFaceListNotFound", "Large face list"),
    };
    let not_found = || CoreError::NoSuchResource { code, message: format!("{noun} '{object_id}' is not found.") };
    let scope: Option<&Scope> = match &caller.scope {
        KeyScope::One(scope) => Some(scope),
        KeyScope::All => None,
        KeyScope::Many(_) => return Err(not_found().into()),
    };
    let resource = format!("/{}/{object_id}", object_type.collection());
    let apply = demo::newest_on(app.store.as_ref(), &caller, scope, &["applySnapshot"], &resource).await?;
    match apply {
        Some(op) if demo::succeeded(op.state) => {
            Ok(json(StatusCode::OK, HeaderMap::new(), &SnapshotTarget::new(object_type, object_id)))
        }
        _ => Err(not_found().into()),
    }
}
