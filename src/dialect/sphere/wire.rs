//! Azure Sphere public API wire types (seed 000), serde only. Names exactly
//! as the Sphere reference documents them.
//! <https://learn.microsoft.com/rest/api/azure-sphere/async-operations/get-image-upload-details>

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

/// `Operation`: PascalCase, integer enums, every member always present.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Sphere::Operation)]
#[serde(rename_all = "PascalCase")]
pub struct Operation {
    /// Unique operation id.
    pub operation_id: String,
    /// Integer `OperationType` (7 = ImageUpload).
    #[schema(schema_with = operation_type_schema)]
    pub operation_type: u8,
    /// Integer `State`: 0 NotStarted, 1 InProgress, 2 Complete, 3 Failed, 4 CompleteWithErrors.
    #[schema(schema_with = state_schema)]
    pub state: u8,
    /// Tenant id.
    pub tenant_id: String,
    /// Creation time, UTC.
    #[serde(rename = "CreatedDateUTC")]
    pub created_date_utc: String,
    /// Start time, UTC.
    #[serde(rename = "StartedDateUTC")]
    pub started_date_utc: Option<String>,
    /// Completion time, UTC.
    #[serde(rename = "CompletedDateUTC")]
    pub completed_date_utc: Option<String>,
    /// Location of resources the operation created.
    pub resource_location: Option<String>,
    /// Where to get more details.
    pub details_location: Option<String>,
    /// Why it failed.
    pub error: Option<ErrorResponse>,
}

/// `ErrorResponse`: an integer code and a message.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Sphere::ErrorResponse)]
#[serde(rename_all = "PascalCase")]
pub struct ErrorResponse {
    /// 0 OperationFailed … 8 NotFound.
    #[schema(schema_with = error_code_schema)]
    pub code: u8,
    /// Human-readable message.
    pub message: String,
}

/// `PublicApiErrorDetails`: RFC 7807 members; responses carry an array of them.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Sphere::PublicApiErrorDetails)]
#[serde(rename_all = "PascalCase")]
pub struct PublicApiErrorDetails {
    /// Problem type URI.
    #[serde(rename = "Type")]
    pub kind: String,
    /// Short summary of the problem type.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// Explanation of this occurrence.
    pub detail: String,
    /// The request path it happened on.
    pub instance: String,
    /// String form of the error code.
    pub error_code: String,
    /// Extension members.
    #[schema(value_type = Object)]
    pub extensions: Map<String, Value>,
}

fn int_enum(count: i64, description: &str) -> Object {
    ObjectBuilder::new().schema_type(Type::Integer).enum_values(Some(0..count)).description(Some(description)).build()
}

fn operation_type_schema() -> Object {
    int_enum(
        12,
        "0 DeviceClaim, 1 DeviceUnclaim, 2 DeviceUpdateDeviceGroup, 3 MigrateTenant, 4 CreateProduct, \
         5 DeployToDeviceGroup, 6 DeployToOSFeed, 7 ImageUpload, 8 TenantCreation, 9 DeleteDeviceGroup, \
         10 DeleteProduct, 11 BulkDeviceClaim",
    )
}

fn state_schema() -> Object {
    int_enum(5, "0 NotStarted, 1 InProgress, 2 Complete, 3 Failed, 4 CompleteWithErrors")
}

fn error_code_schema() -> Object {
    int_enum(
        9,
        "0 OperationFailed, 1 TenantInMigration, 2 TenantMigrationRequired, 3 ClientUpdateRequired, \
         4 InternalServerError, 5 BadRequest, 6 Forbidden, 7 Conflict, 8 NotFound",
    )
}

/// `ImageMetadata` (Image - Get Metadata), as the emulator serves it: it
/// counts an upload's bytes and reads no image package, so name, component
/// and description are unknown and every image is an application (10).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Sphere::ImageMetadata)]
#[serde(rename_all = "PascalCase")]
pub struct ImageMetadata {
    /// The image id (the id of the operation that uploaded it).
    pub id: String,
    /// The image name (`null`: not read from the package).
    pub name: Option<String>,
    /// The component id (`null`: not read from the package).
    pub component_id: Option<String>,
    /// The description (`null`).
    pub description: Option<String>,
    /// Deprecated copy of `Type`.
    pub image_type: u8,
    /// Integer image type: 10 Applications.
    #[serde(rename = "Type")]
    pub image_kind: u8,
}
