//! Azure Dev Center data-plane wire types (seed 001), serde only.
//! <https://learn.microsoft.com/rest/api/devcenter/developer/operation-statuses/get>

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// `OperationStatus`: camelCase; optional members only when they have a value.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DevCenter::OperationStatus)]
#[serde(rename_all = "camelCase")]
pub struct OperationStatus {
    /// `/projects/{p}/operationStatuses/{id}`.
    pub id: String,
    /// The operation id.
    pub name: String,
    /// `NotStarted`, `Running`, `Succeeded`, `Failed` or `Canceled`.
    #[schema(value_type = String, pattern = "^(NotStarted|Running|Succeeded|Failed|Canceled)$")]
    pub status: &'static str,
    /// The resource the operation acts on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    /// Start time, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// End time, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    /// 0..=100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent_complete: Option<f64>,
    /// Custom properties, only for succeeded operations.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub properties: Option<Map<String, Value>>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Error>,
}

/// `Azure.Core.Foundations.ErrorResponse`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Azure::Core::Foundations::ErrorResponse)]
pub struct ErrorResponse {
    /// The error.
    pub error: Error,
}

/// `Azure.Core.Foundations.Error`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Azure::Core::Foundations::Error)]
pub struct Error {
    /// Server-defined code.
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// Target of the error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Errors that led to this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(no_recursion)]
    pub details: Option<Vec<Error>>,
}

/// `DevBox` (Dev Boxes - Get Dev Box), as the emulator serves it: what the
/// actions recorded on the box tell, nothing it cannot know (no hardware,
/// image or pool details beyond a name).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DevCenter::DevBox)]
#[serde(rename_all = "camelCase")]
pub struct DevBox {
    /// The dev box name.
    pub name: String,
    /// The project it belongs to.
    pub project_name: String,
    /// Its pool (`default`: the emulator knows no pools).
    pub pool_name: &'static str,
    /// `Succeeded`, or `Starting`, `Stopping`, `Updating` or `Deleting`
    /// while an action runs.
    #[schema(value_type = String)]
    pub provisioning_state: &'static str,
    /// The state the last action left: `Started`, `Stopped`, `Failed` or
    /// `Unknown`.
    #[schema(value_type = String)]
    pub action_state: &'static str,
    /// `Running`, `Deallocated` or `Unknown`.
    #[schema(value_type = String)]
    pub power_state: &'static str,
    /// A GUID derived from the box's path.
    pub unique_id: uuid::Uuid,
    /// The user as the actions named it (`me` or an object id).
    pub user: String,
    /// `Windows`.
    #[schema(value_type = String)]
    pub os_type: &'static str,
    /// When the newest action on it was requested (the emulator never sees
    /// a box created).
    pub created_time: String,
    /// Why the last action failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Error>,
}
