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
