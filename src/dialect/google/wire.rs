//! google.longrunning wire types in their proto3 JSON form (the REST
//! mapping), serde only. google-api-core parses them strictly: no field
//! beyond the proto's, and every `Any` of a type it knows.
//! <https://github.com/googleapis/googleapis/blob/master/google/longrunning/operations.proto>

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// The `@type` of a `google.protobuf.Struct` packed in an `Any`.
pub const STRUCT_TYPE: &str = "type.googleapis.com/google.protobuf.Struct";
/// The `@type` of a `google.rpc.ErrorInfo` packed in an `Any`.
pub const ERROR_INFO_TYPE: &str = "type.googleapis.com/google.rpc.ErrorInfo";

/// `google.longrunning.Operation`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Google::Operation)]
pub struct Operation {
    /// `{scope}/operations/{id}`.
    pub name: String,
    /// State, progress, kind and times, as a `Struct`.
    pub metadata: AnyStruct,
    /// True once the operation is finished (Succeeded, Failed, Canceled,
    /// CompleteWithErrors).
    pub done: bool,
    /// Why it failed or that it was canceled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Status>,
    /// What a success made: `resourceLocation` and `properties`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<AnyStruct>,
}

/// A `google.protobuf.Struct` packed in an `Any` (its JSON form).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Google::AnyStruct)]
pub struct AnyStruct {
    /// `type.googleapis.com/google.protobuf.Struct`.
    #[serde(rename = "@type")]
    pub type_url: &'static str,
    /// The struct's fields.
    #[schema(value_type = Object)]
    pub value: Map<String, Value>,
}

impl AnyStruct {
    /// `fields` as a packed `Struct`.
    pub fn new(fields: Map<String, Value>) -> AnyStruct {
        AnyStruct { type_url: STRUCT_TYPE, value: fields }
    }
}

/// `google.rpc.Status`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Google::Status)]
pub struct Status {
    /// A `google.rpc.Code`.
    pub code: i32,
    /// The producer's message.
    pub message: String,
    /// One `ErrorInfo`.
    pub details: Vec<ErrorInfo>,
}

/// `google.rpc.ErrorInfo` packed in an `Any`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Google::ErrorInfo)]
pub struct ErrorInfo {
    /// `type.googleapis.com/google.rpc.ErrorInfo`.
    #[serde(rename = "@type")]
    pub type_url: &'static str,
    /// The error code in UPPER_SNAKE_CASE.
    pub reason: String,
    /// `longrun`.
    pub domain: &'static str,
    /// Nothing yet.
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
}

impl ErrorInfo {
    /// The `ErrorInfo` of `reason` in longrun's domain.
    pub fn new(reason: String) -> ErrorInfo {
        ErrorInfo { type_url: ERROR_INFO_TYPE, reason, domain: "longrun", metadata: Map::new() }
    }
}

/// `google.longrunning.ListOperationsResponse`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Google::ListOperationsResponse)]
#[serde(rename_all = "camelCase")]
pub struct ListOperationsResponse {
    /// A page of operations, newest first.
    pub operations: Vec<Operation>,
    /// Continues the listing; absent on the last page.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub next_page_token: String,
}

/// `google.protobuf.Empty`: what Cancel and Delete answer.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Google::Empty)]
pub struct Empty {}

/// The REST error body: `{"error": {code, message, status, details}}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Google::ErrorResponse)]
pub struct ErrorResponse {
    /// The error.
    pub error: ErrorStatus,
}

/// The error of a REST call: `google.rpc.Status` with the HTTP code and the
/// code's name.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Google::ErrorStatus)]
pub struct ErrorStatus {
    /// The HTTP status.
    pub code: u16,
    /// What went wrong.
    pub message: String,
    /// The `google.rpc.Code` name, e.g. `NOT_FOUND`.
    pub status: &'static str,
    /// One `ErrorInfo` naming longrun's error code.
    pub details: Vec<ErrorInfo>,
}
