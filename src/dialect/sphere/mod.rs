//! Azure Sphere dialect (seed 000, SPEC §2.1): the typed and the generic
//! "AsyncOperations - Get", with bearer keys. Translate only.

mod error;
pub(crate) mod initiate;
pub(crate) mod resources;
pub(crate) mod wire;

pub use error::{CommonErrors, Error, WriteErrors};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use uuid::Uuid;

use crate::http::error::CoreError;
use crate::http::headers::RequestHeaders;
use crate::model::{Operation, OperationId, Scope, State as OpState};
use crate::service::auth::jwt::Front;
use crate::service::state::AppState;

/// Sphere's `OperationType` enum, by integer, as camelCase kinds.
pub const OPERATION_TYPES: [&str; 12] = [
    "deviceClaim",
    "deviceUnclaim",
    "deviceUpdateDeviceGroup",
    "migrateTenant",
    "createProduct",
    "deployToDeviceGroup",
    "deployToOSFeed",
    "imageUpload",
    "tenantCreation",
    "deleteDeviceGroup",
    "deleteProduct",
    "bulkDeviceClaim",
];

/// Sphere's `ErrorResponse.Code` enum, by integer.
const ERROR_CODES: [&str; 9] = [
    "OperationFailed",
    "TenantInMigration",
    "TenantMigrationRequired",
    "ClientUpdateRequired",
    "InternalServerError",
    "BadRequest",
    "Forbidden",
    "Conflict",
    "NotFound",
];

/// The integer of a kind in `OPERATION_TYPES`, if it is a Sphere type.
pub fn operation_type(kind: &str) -> Option<u8> {
    OPERATION_TYPES.iter().position(|t| *t == kind).map(|i| i as u8)
}

/// The typed status URL of a tenant's operation.
pub fn operation_path(tenant: &Uuid, op: &Operation) -> String {
    format!("/v2/tenants/{}/operationTypes/{}/operations/{}", tenant.hyphenated(), op.kind, op.id)
}

/// Sphere routes, mounted at the root.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v2/tenants/{tenant_id}/operationTypes/{operation_type}/operations/{operation_id}", get(get_typed))
        .route("/v2/tenants/{tenant_id}/operations/{operation_id}", get(get_generic))
        .route("/v2/tenants/{tenant_id}/images", post(initiate::upload_image))
        .route("/v2/tenants/{tenant_id}/images/{image_id}", get(resources::get_image_metadata))
        .route("/v2/tenants/{tenant_id}/images/{image_id}/metadata", get(resources::get_image_metadata))
}

/// Async Operations - Get (typed, e.g. GetImageUploadDetails).
#[utoipa::path(
    get,
    path = "/v2/tenants/{tenantId}/operationTypes/{operationType}/operations/{operationId}",
    tag = "Sphere",
    operation_id = "AsyncOperations_GetTyped",
    params(("tenantId" = String, Path, format = Uuid), ("operationType" = String, Path), ("operationId" = String, Path, format = Uuid), ("If-None-Match" = Option<String>, Header)),
    responses(
        (status = 200, description = "Success.", body = wire::Operation),
        (status = 304, description = "Not modified since the ETag in If-None-Match"),
        (status = 400, description = "Malformed request", body = Vec<wire::PublicApiErrorDetails>, content_type = "application/problem+json"),
        (status = 404, description = "No such operation in the caller's reach", body = Vec<wire::PublicApiErrorDetails>, content_type = "application/problem+json"),
        CommonErrors,
    ),
    security(("bearer" = []))
)]
pub(crate) async fn get_typed(
    State(app): State<AppState>,
    Path((tenant_id, operation_type, operation_id)): Path<(String, String, String)>,
    uri: Uri,
    RequestHeaders(headers): RequestHeaders,
) -> Result<Response, Error> {
    read(&app, &headers, &tenant_id, Some(&operation_type), &operation_id).await.map_err(Error::at(uri.path()))
}

/// Async Operations - Get.
#[utoipa::path(
    get,
    path = "/v2/tenants/{tenantId}/operations/{operationId}",
    tag = "Sphere",
    operation_id = "AsyncOperations_Get",
    params(("tenantId" = String, Path, format = Uuid), ("operationId" = String, Path, format = Uuid), ("If-None-Match" = Option<String>, Header)),
    responses(
        (status = 200, description = "Success.", body = wire::Operation),
        (status = 304, description = "Not modified since the ETag in If-None-Match"),
        (status = 400, description = "Malformed request", body = Vec<wire::PublicApiErrorDetails>, content_type = "application/problem+json"),
        (status = 404, description = "No such operation in the caller's reach", body = Vec<wire::PublicApiErrorDetails>, content_type = "application/problem+json"),
        CommonErrors,
    ),
    security(("bearer" = []))
)]
pub(crate) async fn get_generic(
    State(app): State<AppState>,
    Path((tenant_id, operation_id)): Path<(String, String)>,
    uri: Uri,
    RequestHeaders(headers): RequestHeaders,
) -> Result<Response, Error> {
    read(&app, &headers, &tenant_id, None, &operation_id).await.map_err(Error::at(uri.path()))
}

async fn read(
    app: &AppState,
    headers: &HeaderMap,
    tenant_id: &str,
    typed_as: Option<&str>,
    operation_id: &str,
) -> Result<Response, CoreError> {
    let caller = app.bearer_caller(headers, Front::Sphere).await?;
    let tenant = OperationId::parse(tenant_id)
        .ok_or_else(|| {
            CoreError::bad_request("InvalidParameter", "tenantId", format!("tenantId '{tenant_id}' is not a UUID."))
        })?
        .uuid();
    let id = OperationId::parse(operation_id).ok_or_else(|| {
        CoreError::bad_request(
            "InvalidParameter",
            "operationId",
            format!("operationId '{operation_id}' is not a UUID."),
        )
    })?;
    if let Some(t) = typed_as
        && operation_type(t).is_none()
    {
        return Err(CoreError::NoSuchOperation { id: id.to_string() });
    }
    let scope = Scope::Tenant(tenant);
    let op = super::read_status(app, headers, &caller, id, |op_scope, kind| {
        *op_scope == scope && operation_type(kind.as_ref()).is_some() && typed_as.is_none_or(|t| t == kind.as_ref())
    })
    .await?;
    if let Some(unchanged) = super::not_modified(headers, &op, app.retry_after) {
        return Ok(unchanged);
    }
    Ok(super::json(StatusCode::OK, super::status_headers(&op, app.retry_after), &render(&tenant, &op)))
}

/// Model → Sphere `Operation`.
fn render(tenant: &Uuid, op: &Operation) -> wire::Operation {
    let state = match op.state {
        OpState::NotStarted => 0,
        OpState::Running => 1,
        OpState::Succeeded => 2,
        OpState::Failed | OpState::Canceled => 3,
        OpState::CompleteWithErrors => 4,
    };
    let error = match (op.state, &op.error) {
        (OpState::Canceled, _) => Some(wire::ErrorResponse { code: 0, message: "The operation was canceled.".into() }),
        (_, Some(e)) => Some(wire::ErrorResponse {
            code: ERROR_CODES.iter().position(|c| *c == e.code).unwrap_or(0) as u8,
            message: e.message.clone(),
        }),
        (_, None) => None,
    };
    wire::Operation {
        operation_id: op.id.to_string(),
        operation_type: operation_type(op.kind.as_ref()).expect("only Sphere kinds are rendered"),
        state,
        tenant_id: tenant.hyphenated().to_string(),
        created_date_utc: op.created_at.to_rfc3339_ticks(),
        started_date_utc: op.started_at.map(|t| t.to_rfc3339_ticks()),
        completed_date_utc: op.finished_at.map(|t| t.to_rfc3339_ticks()),
        resource_location: op.resource_location.clone(),
        details_location: Some(op.details_location.clone().unwrap_or_else(|| operation_path(tenant, op))),
        error,
    }
}

/// Renders any core error in Sphere's envelope (the router's fallbacks).
pub fn error_response(path: &str, core: CoreError) -> Response {
    use axum::response::IntoResponse;
    Error::at(path)(core).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Kind, NewOperation, OperationError, Timestamp};
    use serde_json::json;

    fn sample(state: OpState) -> Operation {
        let tenant = "143adbc9-1bf0-4be2-84a2-084a331d81cb";
        let request = NewOperation {
            scope: Scope::parse(&format!("tenants/{tenant}")).unwrap(),
            kind: Kind::parse("imageUpload").unwrap(),
            resource_location: None,
            details_location: None,
            properties: None,
            script: None,
        };
        let id = OperationId::parse("0193f0a2-7c1e-7b3a-9f4e-2d5c6b7a8e90").unwrap();
        let mut op = Operation::new(id, request, Timestamp::parse_rfc3339("2026-11-23T10:00:00.1234567Z").unwrap());
        op.state = state;
        op.version = 7;
        if state != OpState::NotStarted {
            op.started_at = Timestamp::parse_rfc3339("2026-11-23T10:00:01Z");
        }
        op
    }

    /// WIRE.md's Sphere sample, byte for byte in value.
    #[test]
    fn renders_the_wire_sample() {
        let op = sample(OpState::Running);
        let Scope::Tenant(tenant) = op.scope else { unreachable!() };
        let body = serde_json::to_value(render(&tenant, &op)).unwrap();
        assert_eq!(
            body,
            json!({
              "OperationId": "0193f0a2-7c1e-7b3a-9f4e-2d5c6b7a8e90",
              "OperationType": 7,
              "State": 1,
              "TenantId": "143adbc9-1bf0-4be2-84a2-084a331d81cb",
              "CreatedDateUTC": "2026-11-23T10:00:00.1234567Z",
              "StartedDateUTC": "2026-11-23T10:00:01.0000000Z",
              "CompletedDateUTC": null,
              "ResourceLocation": null,
              "DetailsLocation": "/v2/tenants/143adbc9-1bf0-4be2-84a2-084a331d81cb/operationTypes/imageUpload/operations/0193f0a2-7c1e-7b3a-9f4e-2d5c6b7a8e90",
              "Error": null
            })
        );
    }

    #[test]
    fn maps_every_state_to_its_integer_and_canceled_to_failed_with_code_0() {
        let expected = [
            (OpState::NotStarted, 0),
            (OpState::Running, 1),
            (OpState::Succeeded, 2),
            (OpState::Failed, 3),
            (OpState::Canceled, 3),
            (OpState::CompleteWithErrors, 4),
        ];
        for (state, int) in expected {
            let op = sample(state);
            let Scope::Tenant(tenant) = op.scope else { unreachable!() };
            let body = render(&tenant, &op);
            assert_eq!(body.state, int, "{state}");
            if state == OpState::Canceled {
                let error = body.error.expect("canceled carries an error");
                assert_eq!(error.code, 0);
                assert!(error.message.contains("canceled"));
            }
        }
    }

    #[test]
    fn maps_known_error_codes_to_their_integers() {
        let mut op = sample(OpState::Failed);
        op.error =
            Some(OperationError { code: "Conflict".into(), message: "busy".into(), target: None, details: None });
        let Scope::Tenant(tenant) = op.scope else { unreachable!() };
        assert_eq!(serde_json::to_value(render(&tenant, &op)).unwrap()["Error"], json!({"Code": 7, "Message": "busy"}));
        op.error.as_mut().unwrap().code = "ImageSignatureInvalid".into();
        assert_eq!(serde_json::to_value(render(&tenant, &op)).unwrap()["Error"]["Code"], json!(0));
    }
}
