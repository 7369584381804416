//! Face API (snapshot) wire types (seed 002), serde only.
//! <https://learn.microsoft.com/rest/api/faceapi/snapshot/get-operation-status>

use serde::Serialize;

/// `OperationStatus`: camelCase, lowercase status values.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationStatus {
    /// `notStarted`, `running`, `succeeded` or `failed`.
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
#[derive(Debug, Serialize)]
pub struct ApiError {
    /// The error body.
    pub error: Error,
}

/// `Error`: code and message, both strings.
#[derive(Debug, Serialize)]
pub struct Error {
    /// Error code.
    pub code: String,
    /// Error message.
    pub message: String,
}
