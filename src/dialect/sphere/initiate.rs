//! Sphere's initiating call (SPEC §2.5): upload an image. Starts an
//! `imageUpload` operation in the tenant and answers 200 with its
//! `Operation`, as Sphere's public API does. The image bytes are counted,
//! not kept: longrun tracks the operation, not the artifact.
//! <https://learn.microsoft.com/rest/api/azure-sphere/image/upload-image>

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde_json::json;

use super::{Error, render};
use crate::dialect;
use crate::http::body::UnreadBody;
use crate::http::error::CoreError;
use crate::model::{Kind, NewOperation, OperationId, Scope};
use crate::service::auth::jwt::Front;
use crate::service::state::AppState;

/// Largest image accepted (streamed and counted, never buffered).
const MAX_IMAGE_BYTES: usize = 512 * 1024 * 1024;

/// An upload over `MAX_IMAGE_BYTES` (413).
type ImageTooLarge = crate::http::responses::BodyErrors<Error, MAX_IMAGE_BYTES>;

/// Image - Upload Image (emulated): starts an `imageUpload` operation.
#[utoipa::path(
    post,
    path = "/v2/tenants/{tenantId}/images",
    tag = "Sphere",
    operation_id = "Image_UploadImage",
    params(("tenantId" = String, Path, format = Uuid)),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 200, description = "Success.", body = super::wire::Operation),
        (status = 400, description = "Malformed request", body = Vec<super::wire::PublicApiErrorDetails>, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the role or scope", body = Vec<super::wire::PublicApiErrorDetails>, content_type = "application/problem+json"),
        super::CommonErrors, super::WriteErrors, ImageTooLarge,
    ),
    security(("bearer" = []))
)]
pub async fn upload_image(
    State(app): State<AppState>,
    Path(tenant_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: UnreadBody,
) -> Result<Response, Error> {
    upload(&app, &tenant_id, &headers, body).await.map_err(Error::at(uri.path()))
}

async fn upload(app: &AppState, tenant_id: &str, headers: &HeaderMap, body: UnreadBody) -> Result<Response, CoreError> {
    let caller = app.bearer_caller(headers, Front::Sphere).await?;
    let tenant = OperationId::parse(tenant_id)
        .ok_or_else(|| {
            CoreError::bad_request("InvalidParameter", "tenantId", format!("tenantId '{tenant_id}' is not a UUID."))
        })?
        .uuid();
    // Refuse before reading up to 512 MiB of an upload that cannot succeed.
    caller.require(crate::model::Role::Produce)?;
    if !caller.can_read(&Scope::Tenant(tenant)) {
        return Err(CoreError::Forbidden { message: "this key may not upload images to this tenant".into() });
    }
    let size = body.count(MAX_IMAGE_BYTES).await?;
    if size == 0 {
        return Err(CoreError::bad_request("InvalidParameter", "image", "The image is empty."));
    }
    let request = NewOperation {
        scope: Scope::Tenant(tenant),
        kind: Kind::parse("imageUpload").expect("a valid literal kind"),
        resource_location: None,
        details_location: None,
        properties: json!({"imageSize": size}).as_object().cloned(),
        script: None,
    };
    // The image is named after the operation uploading it (the emulator's
    // image GET finds one from the other).
    let image = |id| format!("/v2/tenants/{}/images/{id}", tenant.hyphenated());
    let op = app.start_emulated(&caller, request, image).await?;
    Ok(dialect::json(StatusCode::OK, dialect::status_headers(&op, app.retry_after), &render(&tenant, &op)))
}
