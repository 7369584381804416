//! The images Sphere's emulated upload makes, served in demo mode only
//! (`serve --demo`): the operation's `ResourceLocation` and Image - Get
//! Metadata answer once the upload succeeded.
//! <https://learn.microsoft.com/rest/api/azure-sphere/image/get-metadata>

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;

use super::Error;
use super::wire::ImageMetadata;
use crate::dialect::{demo_only, json};
use crate::http::error::CoreError;
use crate::model::{OperationId, Scope};
use crate::service::auth::jwt::Front;
use crate::service::demo;
use crate::service::state::AppState;

/// Image - Get Metadata (demo mode); also served without `/metadata`, the
/// path an upload's `ResourceLocation` names.
#[utoipa::path(
    get,
    path = "/v2/tenants/{tenantId}/images/{imageId}/metadata",
    tag = "Sphere",
    operation_id = "Image_GetMetadata",
    params(("tenantId" = String, Path, format = Uuid), ("imageId" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "Success.", body = super::wire::ImageMetadata),
        (status = 400, description = "Malformed request", body = Vec<super::wire::PublicApiErrorDetails>, content_type = "application/problem+json"),
        (status = 404, description = "No such image, or not in demo mode", body = Vec<super::wire::PublicApiErrorDetails>, content_type = "application/problem+json"),
        super::CommonErrors,
    ),
    security(("bearer" = []))
)]
pub async fn get_image_metadata(
    State(app): State<AppState>,
    Path((tenant_id, image_id)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, Error> {
    image(&app, &tenant_id, &image_id, &uri, &headers).await.map_err(Error::at(uri.path()))
}

async fn image(
    app: &AppState,
    tenant_id: &str,
    image_id: &str,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Response, CoreError> {
    demo_only(app, uri)?;
    let caller = app.bearer_caller(headers, Front::Sphere).await?;
    let uuid = |name: &str, value: &str| {
        OperationId::parse(value)
            .ok_or_else(|| CoreError::bad_request("InvalidParameter", name, format!("{name} '{value}' is not a UUID.")))
    };
    let tenant = uuid("tenantId", tenant_id)?.uuid();
    let id = uuid("imageId", image_id)?;
    let upload = demo::made_by(app.store.as_ref(), &app.policy, &caller, id, "imageUpload").await?;
    match upload {
        Some(op) if op.scope == Scope::Tenant(tenant) => {
            let metadata = ImageMetadata {
                id: id.to_string(),
                name: None,
                component_id: None,
                description: None,
                image_type: 10,
                image_kind: 10,
            };
            Ok(json(StatusCode::OK, HeaderMap::new(), &metadata))
        }
        _ => {
            Err(CoreError::NoSuchResource { code: "NotFound", message: format!("No image {image_id} in this tenant.") })
        }
    }
}
