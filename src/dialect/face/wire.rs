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
