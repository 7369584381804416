//! The dev boxes Dev Center's emulated actions act on, served in demo mode
//! only (`serve --demo`): Dev Boxes - Get Dev Box answers from the newest
//! action recorded on the box, and a box whose delete succeeded is gone.
//! <https://learn.microsoft.com/rest/api/devcenter/developer/dev-boxes/get-dev-box>

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use uuid::Uuid;

use super::wire::DevBox;
use super::{Error, check_api_version, check_dev_box_path, wire_error};
use crate::dialect::{demo_only, json};
use crate::http::error::CoreError;
use crate::model::{Operation, Scope, State as OpState};
use crate::service::auth::jwt::Front;
use crate::service::demo;
use crate::service::state::AppState;

/// The kinds of the emulated dev-box actions.
const ACTIONS: [&str; 4] = ["deleteDevBox", "startDevBox", "stopDevBox", "restartDevBox"];

/// Dev Boxes - Get Dev Box (demo mode).
#[utoipa::path(
    get,
    path = "/projects/{projectName}/users/{userId}/devboxes/{devBoxName}",
    tag = "Dev Center",
    operation_id = "DevBoxes_GetDevBox",
    params(
        ("projectName" = String, Path, pattern = "^[a-zA-Z0-9][a-zA-Z0-9-_.]{2,62}$"),
        ("userId" = String, Path, pattern = "^(me|[0-9a-zA-Z]{8}-[0-9a-zA-Z]{4}-[0-9a-zA-Z]{4}-[0-9a-zA-Z]{4}-[0-9a-zA-Z]{12})$"),
        ("devBoxName" = String, Path, pattern = "^[a-zA-Z0-9][a-zA-Z0-9-_.]{2,62}$"),
        ("api-version" = String, Query),
    ),
    responses(
        (status = 200, description = "The dev box, as its actions left it", body = super::wire::DevBox),
        (status = 400, description = "Malformed request", body = super::wire::ErrorResponse),
        (status = 404, description = "No such dev box, or not in demo mode", body = super::wire::ErrorResponse),
        super::CommonErrors,
    ),
    security(("bearer" = []))
)]
pub async fn get_dev_box(
    State(app): State<AppState>,
    Path((project, user, name)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, Error> {
    demo_only(&app, &uri)?;
    let caller = app.bearer_caller(&headers, Front::DevCenter).await?;
    check_api_version(query.as_deref())?;
    check_dev_box_path(&project, &user, &name)?;
    let resource = format!("/projects/{project}/users/{user}/devboxes/{name}");
    let scope = Scope::Project(project.clone());
    let newest = demo::newest_on(app.store.as_ref(), &caller, Some(&scope), &ACTIONS, &resource).await?;
    let gone = || CoreError::NoSuchResource { code: "NotFound", message: format!("Dev box '{name}' was not found.") };
    let newest = newest.ok_or_else(gone)?;
    if newest.kind.as_ref() == "deleteDevBox" && demo::succeeded(newest.state) {
        return Err(gone().into());
    }
    let (provisioning_state, action_state, power_state) = states(&newest);
    let dev_box = DevBox {
        unique_id: Uuid::new_v5(&Uuid::NAMESPACE_URL, resource.as_bytes()),
        name,
        project_name: project,
        pool_name: "default",
        provisioning_state,
        action_state,
        power_state,
        user,
        os_type: "Windows",
        created_time: newest.created_at.to_rfc3339_millis(),
        error: newest.error.as_ref().filter(|_| action_state == "Failed").map(wire_error),
    };
    Ok(json(StatusCode::OK, HeaderMap::new(), &dev_box))
}

/// Provisioning, action and power state after the newest action `op`.
fn states(op: &Operation) -> (&'static str, &'static str, &'static str) {
    let kind = op.kind.as_ref();
    match op.state {
        OpState::NotStarted | OpState::Running => {
            let provisioning = match kind {
                "deleteDevBox" => "Deleting",
                "stopDevBox" => "Stopping",
                "startDevBox" => "Starting",
                _ => "Updating",
            };
            (provisioning, "Unknown", "Unknown")
        }
        OpState::Succeeded | OpState::CompleteWithErrors if kind == "stopDevBox" => {
            ("Succeeded", "Stopped", "Deallocated")
        }
        OpState::Succeeded | OpState::CompleteWithErrors => ("Succeeded", "Started", "Running"),
        OpState::Failed | OpState::Canceled => ("Succeeded", "Failed", "Unknown"),
    }
}
