//! Dev Center's initiating calls (SPEC §2.5): delete, start, stop and
//! restart a dev box. Each starts an operation in the project and answers as
//! Dev Center does: 202 with an `OperationStatus` body (the SDK parses it)
//! and `Operation-Location` (api-version included: the SDK polls it verbatim).
//! <https://learn.microsoft.com/rest/api/devcenter/developer/dev-boxes/delete-dev-box>

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::{Error, check_api_version, check_dev_box_path, operation_path, render};
use crate::dialect;
use crate::http::error::CoreError;
use crate::model::{Kind, NewOperation, Scope};
use crate::service::auth::jwt::Front;
use crate::service::state::AppState;

/// Dev Boxes - Delete Dev Box (emulated).
#[utoipa::path(
    delete,
    path = "/projects/{projectName}/users/{userId}/devboxes/{devBoxName}",
    tag = "Dev Center",
    operation_id = "DevBoxes_DeleteDevBox",
    params(
        ("projectName" = String, Path, pattern = "^[a-zA-Z0-9][a-zA-Z0-9-_.]{2,62}$"),
        ("userId" = String, Path, pattern = "^(me|[0-9a-zA-Z]{8}-[0-9a-zA-Z]{4}-[0-9a-zA-Z]{4}-[0-9a-zA-Z]{4}-[0-9a-zA-Z]{12})$"),
        ("devBoxName" = String, Path, pattern = "^[a-zA-Z0-9][a-zA-Z0-9-_.]{2,62}$"),
        ("api-version" = String, Query),
    ),
    responses(
        (status = 202, description = "Accepted", body = super::wire::OperationStatus, headers(("Operation-Location" = String), ("Location" = String))),
        (status = 400, description = "Malformed request", body = super::wire::ErrorResponse),
        (status = 403, description = "The key lacks the role or scope", body = super::wire::ErrorResponse),
        super::CommonErrors, super::WriteErrors,
    ),
    security(("bearer" = []))
)]
pub async fn delete_dev_box(
    State(app): State<AppState>,
    Path((project, user, dev_box)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Error> {
    start(&app, &headers, query.as_deref(), &project, &user, &dev_box, "deleteDevBox").await
}

/// Dev Boxes - Start/Stop/Restart Dev Box (emulated). Documented once for
/// `:start`; `openapi` repeats it for `:stop` and `:restart`.
#[utoipa::path(
    post,
    path = "/projects/{projectName}/users/{userId}/devboxes/{devBoxName}:start",
    tag = "Dev Center",
    operation_id = "DevBoxes_StartDevBox",
    params(
        ("projectName" = String, Path, pattern = "^[a-zA-Z0-9][a-zA-Z0-9-_.]{2,62}$"),
        ("userId" = String, Path, pattern = "^(me|[0-9a-zA-Z]{8}-[0-9a-zA-Z]{4}-[0-9a-zA-Z]{4}-[0-9a-zA-Z]{4}-[0-9a-zA-Z]{12})$"),
        ("devBoxName" = String, Path, pattern = "^[a-zA-Z0-9][a-zA-Z0-9-_.]{2,62}$"),
        ("api-version" = String, Query),
    ),
    responses(
        (status = 202, description = "Accepted", body = super::wire::OperationStatus, headers(("Operation-Location" = String))),
        (status = 400, description = "Malformed request", body = super::wire::ErrorResponse),
        (status = 403, description = "The key lacks the role or scope", body = super::wire::ErrorResponse),
        super::CommonErrors, super::WriteErrors,
    ),
    security(("bearer" = []))
)]
pub async fn dev_box_action(
    State(app): State<AppState>,
    Path((project, user, name_action)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let (dev_box, kind) = match name_action.rsplit_once(':') {
        Some((name, "start")) => (name, "startDevBox"),
        Some((name, "stop")) => (name, "stopDevBox"),
        Some((name, "restart")) => (name, "restartDevBox"),
        _ => return Err(CoreError::MethodNotAllowed { method: "POST".into() }.into()),
    };
    start(&app, &headers, query.as_deref(), &project, &user, dev_box, kind).await
}

async fn start(
    app: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
    project: &str,
    user: &str,
    dev_box: &str,
    kind: &str,
) -> Result<Response, Error> {
    let caller = app.bearer_caller(headers, Front::DevCenter).await?;
    check_api_version(query)?;
    check_dev_box_path(project, user, dev_box)?;
    let resource = format!("/projects/{project}/users/{user}/devboxes/{dev_box}");
    let request = NewOperation {
        scope: Scope::Project(project.to_owned()),
        kind: Kind::parse(kind).expect("a valid literal kind"),
        resource_location: Some(resource.clone()),
        details_location: None,
        properties: None,
        script: None,
    };
    let op = app.start_emulated(&caller, request, |_| resource).await?;
    let Scope::Project(project) = &op.scope else { unreachable!("created in a project") };
    let status_url = HeaderValue::from_str(&operation_path(project, op.id)).expect("a path");
    let mut response_headers = dialect::status_headers(&op, app.retry_after);
    response_headers.insert("operation-location", status_url.clone());
    // Only the delete sends Location: azure-core follows a POST's Location
    // with one more GET once the operation succeeds.
    if kind == "deleteDevBox" {
        response_headers.insert(header::LOCATION, status_url);
    }
    Ok(dialect::json(StatusCode::ACCEPTED, response_headers, &render(&op)))
}
