//! Face API (snapshot) wire types (seed 002), serde only.
//! <https://learn.microsoft.com/rest/api/faceapi/snapshot/get-operation-status>

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `OperationStatus`: camelCase, lowercase status values.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Face::OperationStatus)]
#[serde(rename_all = "camelCase")]
pub struct OperationStatus {
    /// `notStarted`, `running`, `succeeded` or `failed`.
    #[schema(value_type = String, pattern = "^(notStarted|running|succeeded|failed)$")]
    pub status: &'static str,
    /// When the operation was requested.
    pub created_time: String,
    /// When it last did something.
    pub last_action_time: String,
    /// When it finished; only once finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_time: Option<String>,
    /// The snapshot id or target path, once succeeded.
    pub resource_location: Option<String>,
    /// Why it failed; `null` otherwise.
    pub message: Option<String>,
}

/// `APIError`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Face::APIError)]
pub struct ApiError {
    /// The error body.
    pub error: Error,
}

/// `Error`: code and message, both strings.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Face::Error)]
pub struct Error {
    /// Error code.
    pub code: String,
    /// Error message.
    pub message: String,
}

/// `TakeSnapshotRequest` (Snapshot - Take).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = Face::TakeSnapshotRequest)]
#[serde(rename_all = "camelCase")]
pub struct TakeSnapshotRequest {
    /// `FaceList`, `LargeFaceList`, `LargePersonGroup` or `PersonGroup`.
    #[serde(rename = "type")]
    pub object_type: SnapshotObjectType,
    /// The source object's id.
    pub object_id: String,
    /// Subscription ids allowed to apply the snapshot.
    pub apply_scope: Vec<uuid::Uuid>,
    /// Up to 16 KB of user data.
    pub user_data: Option<String>,
}

/// `SnapshotObjectType`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[schema(as = Face::SnapshotObjectType)]
pub enum SnapshotObjectType {
    /// A face list.
    FaceList,
    /// A large face list.
    LargeFaceList,
    /// A large person group.
    LargePersonGroup,
    /// A person group.
    PersonGroup,
}

impl SnapshotObjectType {
    /// The path segment of this type's objects (`/persongroups/{id}`).
    pub fn collection(self) -> &'static str {
        match self {
            SnapshotObjectType::FaceList => "facelists",
            SnapshotObjectType::LargeFaceList => "largefacelists",
            SnapshotObjectType::LargePersonGroup => "largepersongroups",
            SnapshotObjectType::PersonGroup => "persongroups",
        }
    }
}

/// `ApplySnapshotRequest` (Snapshot - Apply).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = Face::ApplySnapshotRequest)]
#[serde(rename_all = "camelCase")]
pub struct ApplySnapshotRequest {
    /// The target object's id.
    pub object_id: String,
    /// Only `CreateNew` exists; parsed so that anything else is refused.
    #[allow(dead_code)]
    pub mode: Option<SnapshotApplyMode>,
}

/// `SnapshotApplyMode`.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[schema(as = Face::SnapshotApplyMode)]
pub enum SnapshotApplyMode {
    /// Create a new object from the snapshot.
    CreateNew,
}

/// `Snapshot` (Snapshot - Get), as the emulator serves it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Face::Snapshot)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// The snapshot id (the id of the operation that took it).
    pub id: uuid::Uuid,
    /// The account that took it (its longrun scope, `accounts/{name}`).
    pub account: String,
    /// The source object's type.
    #[serde(rename = "type")]
    pub object_type: SnapshotObjectType,
    /// Subscription ids allowed to apply it.
    pub apply_scope: Vec<uuid::Uuid>,
    /// The user data given to Snapshot - Take.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    /// When the take was requested.
    pub created_time: String,
    /// When the take finished.
    pub last_update_time: String,
}

/// The object a snapshot was applied to (the Get of a PersonGroup,
/// LargePersonGroup, FaceList or LargeFaceList): its id under the field
/// name of its type, and its name (the emulator knows no other).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Face::SnapshotTarget)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotTarget {
    /// `personGroupId` of a person group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub person_group_id: Option<String>,
    /// `largePersonGroupId` of a large person group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub large_person_group_id: Option<String>,
    /// `faceListId` of a face list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_list_id: Option<String>,
    /// `largeFaceListId` of a large face list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub large_face_list_id: Option<String>,
    /// The object's name: its id (a snapshot carries no name longrun sees).
    pub name: String,
    /// The faces of a face list (none the emulator knows of).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persisted_faces: Option<Vec<serde_json::Value>>,
}

impl SnapshotTarget {
    /// The object `id` of `object_type`.
    pub fn new(object_type: SnapshotObjectType, id: String) -> SnapshotTarget {
        let mut target = SnapshotTarget {
            person_group_id: None,
            large_person_group_id: None,
            face_list_id: None,
            large_face_list_id: None,
            name: id.clone(),
            persisted_faces: None,
        };
        match object_type {
            SnapshotObjectType::PersonGroup => target.person_group_id = Some(id),
            SnapshotObjectType::LargePersonGroup => target.large_person_group_id = Some(id),
            SnapshotObjectType::FaceList => {
                target.face_list_id = Some(id);
                target.persisted_faces = Some(Vec::new());
            }
            SnapshotObjectType::LargeFaceList => target.large_face_list_id = Some(id),
        }
        target
    }
}
