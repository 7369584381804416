//! Azure Dev Center dialect (seed 001, SPEC §2.2): operation statuses of a
//! project, with `api-version` checked and bearer keys. Translate only.

mod error;
pub(crate) mod initiate;
pub(crate) mod resources;
pub(crate) mod wire;

pub use error::{CommonErrors, Error, WriteErrors};

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};

use crate::http::error::CoreError;
use crate::http::headers::RequestHeaders;
use crate::model::id::is_project_name;
use crate::model::{Operation, OperationId, Scope, State as OpState};
use crate::service::auth::jwt::Front;
use crate::service::state::AppState;

/// Every Dev Center data-plane api-version, oldest first; the newest is the
/// seed's. Requests with any of them are answered the same way.
pub const API_VERSIONS: [&str; 11] = [
    "2022-11-11-preview",
    "2023-01-01-preview",
    "2023-04-01",
    "2023-07-01-preview",
    "2023-10-01-preview",
    "2024-02-01",
    "2024-05-01-preview",
    "2024-06-01-preview",
    "2024-08-01-preview",
    "2024-10-01-preview",
    super::DEVCENTER_API_VERSION,
];

/// The status URL of a project's operation, api-version included: the SDK
/// polls `Operation-Location` verbatim and adds none of its own.
pub fn operation_path(project: &str, id: OperationId) -> String {
    format!("/projects/{project}/operationstatuses/{id}?api-version={}", super::DEVCENTER_API_VERSION)
}

/// Dev Center routes, mounted at the root.
pub fn router() -> Router<AppState> {
    Router::new().route("/projects/{project_name}/operationstatuses/{operation_id}", get(get_operation_status)).route(
        "/projects/{project_name}/users/{user_id}/devboxes/{dev_box_name}",
        delete(initiate::delete_dev_box).post(initiate::dev_box_action).get(resources::get_dev_box),
    )
}

/// Operation Statuses - Get.
#[utoipa::path(
    get,
    path = "/projects/{projectName}/operationstatuses/{operationId}",
    tag = "Dev Center",
    operation_id = "OperationStatuses_Get",
    params(
        ("projectName" = String, Path, pattern = "^[a-zA-Z0-9][a-zA-Z0-9-_.]{2,62}$"),
        ("operationId" = String, Path, pattern = "^[a-zA-Z0-9]{8}-([a-zA-Z0-9]{4}-){3}[a-zA-Z0-9]{12}$"),
        ("api-version" = String, Query),
        ("If-None-Match" = Option<String>, Header),
    ),
    responses(
        (status = 200, description = "The request has succeeded.", body = wire::OperationStatus),
        (status = 304, description = "Not modified since the ETag in If-None-Match"),
        (status = 400, description = "Malformed request", body = wire::ErrorResponse),
        (status = 404, description = "No such operation in the caller's reach", body = wire::ErrorResponse),
        CommonErrors,
    ),
    security(("bearer" = []))
)]
pub(crate) async fn get_operation_status(
    State(app): State<AppState>,
    Path((project_name, operation_id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    RequestHeaders(headers): RequestHeaders,
) -> Result<Response, Error> {
    let caller = app.bearer_caller(&headers, Front::DevCenter).await?;
    check_api_version(query.as_deref())?;
    if !is_project_name(&project_name) {
        return Err(CoreError::bad_request(
            "InvalidParameter",
            "projectName",
            format!("projectName '{project_name}' must match ^[a-zA-Z0-9][a-zA-Z0-9-_.]{{2,62}}$."),
        )
        .into());
    }
    if is_operation_id(&operation_id) && OperationId::parse(&operation_id).is_none() {
        // Matches the seed's pattern but is no UUID: a well-formed id that
        // no operation has.
        return Err(CoreError::NoSuchOperation { id: operation_id }.into());
    }
    let id = OperationId::parse(&operation_id).filter(|_| is_operation_id(&operation_id)).ok_or_else(|| {
        CoreError::bad_request(
            "InvalidParameter",
            "operationId",
            format!(
                "operationId '{operation_id}' must match ^[a-zA-Z0-9]{{8}}-([a-zA-Z0-9]{{4}}-){{3}}[a-zA-Z0-9]{{12}}$."
            ),
        )
    })?;
    let scope = Scope::Project(project_name);
    let op = super::read_status(&app, &headers, &caller, id, |op_scope, _| *op_scope == scope).await?;
    if let Some(unchanged) = super::not_modified(&headers, &op, app.retry_after) {
        return Ok(unchanged);
    }
    Ok(super::json(StatusCode::OK, super::status_headers(&op, app.retry_after), &render(&op)))
}

/// `api-version` must be present and one of `API_VERSIONS` (Azure's wording).
pub fn check_api_version(query: Option<&str>) -> Result<(), CoreError> {
    let requested =
        form_urlencoded::parse(query.unwrap_or("").as_bytes()).find(|(name, _)| name == "api-version").map(|(_, v)| v);
    match requested {
        None => Err(CoreError::BadRequest {
            code: "MissingApiVersionParameter",
            message: "The api-version query parameter (?api-version=) is required for all requests.".into(),
            target: None,
        }),
        Some(v) if API_VERSIONS.contains(&&*v) => Ok(()),
        Some(v) => Err(CoreError::BadRequest {
            code: "UnsupportedApiVersionValue",
            message: format!(
                "Unsupported api-version '{v}'. The supported api-versions are '{}'.",
                API_VERSIONS.join(", ")
            ),
            target: None,
        }),
    }
}

/// The seed's operationId pattern; stricter than "any UUID" only in that it
/// also refuses non-hex letters, which `OperationId::parse` already does.
fn is_operation_id(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(
            |(i, c)| {
                if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_alphanumeric() }
            },
        )
}

/// Checks the three names of a dev box's path (400 naming the bad one).
fn check_dev_box_path(project: &str, user: &str, dev_box: &str) -> Result<(), CoreError> {
    let invalid = |target: &str, value: &str| {
        CoreError::bad_request("InvalidParameter", target, format!("{target} '{value}' is not valid."))
    };
    if !is_project_name(project) {
        return Err(invalid("projectName", project));
    }
    if user != "me" && !is_operation_id(user) {
        return Err(invalid("userId", user));
    }
    if !is_project_name(dev_box) {
        return Err(invalid("devBoxName", dev_box));
    }
    Ok(())
}

/// Model → Dev Center `OperationStatus`.
fn render(op: &Operation) -> wire::OperationStatus {
    let Scope::Project(project) = &op.scope else { unreachable!("only project operations are rendered") };
    let status = match op.state {
        OpState::NotStarted => "NotStarted",
        OpState::Running => "Running",
        OpState::Succeeded | OpState::CompleteWithErrors => "Succeeded",
        OpState::Failed => "Failed",
        OpState::Canceled => "Canceled",
    };
    let succeeded = status == "Succeeded";
    wire::OperationStatus {
        id: format!("/projects/{project}/operationStatuses/{}", op.id),
        name: op.id.to_string(),
        status,
        resource_id: op.resource_location.clone(),
        start_time: op.started_at.map(|t| t.to_rfc3339_millis()),
        end_time: op.finished_at.map(|t| t.to_rfc3339_millis()),
        percent_complete: op.percent_complete,
        properties: op.properties.clone().filter(|_| succeeded),
        error: match (&op.error, op.state) {
            (Some(e), _) => Some(wire_error(e)),
            // azure-core treats Canceled as a failure and raises with the
            // body's error; without one its message is unhelpful.
            (None, OpState::Canceled) => Some(wire::Error {
                code: "OperationCanceled".into(),
                message: "The operation was canceled.".into(),
                target: None,
                details: None,
            }),
            (None, _) => None,
        },
    }
}

fn wire_error(e: &crate::model::OperationError) -> wire::Error {
    wire::Error {
        code: e.code.clone(),
        message: e.message.clone(),
        target: e.target.clone(),
        details: e.details.as_ref().map(|d| d.iter().map(wire_error).collect()),
    }
}

/// Renders any core error in Azure.Core's envelope (the router's fallbacks).
pub fn error_response(core: CoreError) -> Response {
    Error(core).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Kind, NewOperation, Timestamp};
    use serde_json::json;

    fn sample(state: OpState) -> Operation {
        let request = NewOperation {
            scope: Scope::parse("projects/myProject").unwrap(),
            kind: Kind::parse("deleteDevBox").unwrap(),
            resource_location: None,
            details_location: None,
            properties: json!({"k": "v"}).as_object().cloned(),
            script: None,
        };
        let id = OperationId::parse("fa067167-e49d-41bd-8dd8-de719b9de3b3").unwrap();
        let mut op = Operation::new(id, request, Timestamp::parse_rfc3339("2024-01-24T21:14:50Z").unwrap());
        op.state = state;
        op.started_at = Timestamp::parse_rfc3339("2024-01-24T21:14:58.472Z");
        op
    }

    /// The seed's sample response, exactly.
    #[test]
    fn renders_the_seed_sample() {
        let body = serde_json::to_value(render(&sample(OpState::Running))).unwrap();
        assert_eq!(
            body,
            json!({
              "id": "/projects/myProject/operationStatuses/fa067167-e49d-41bd-8dd8-de719b9de3b3",
              "name": "fa067167-e49d-41bd-8dd8-de719b9de3b3",
              "status": "Running",
              "startTime": "2024-01-24T21:14:58.472Z"
            })
        );
    }

    #[test]
    fn never_emits_a_status_the_sdk_does_not_know() {
        for state in OpState::ALL {
            let status = render(&sample(state)).status;
            assert!(["NotStarted", "Running", "Succeeded", "Failed", "Canceled"].contains(&status), "{status}");
        }
    }

    #[test]
    fn properties_appear_only_once_succeeded() {
        assert!(render(&sample(OpState::Running)).properties.is_none());
        assert_eq!(render(&sample(OpState::Succeeded)).properties, json!({"k": "v"}).as_object().cloned());
    }

    #[test]
    fn api_version_is_required_and_checked() {
        assert!(check_api_version(Some("api-version=2025-02-01")).is_ok());
        assert!(check_api_version(Some("x=1&api-version=2023-04-01")).is_ok());
        let missing = check_api_version(Some("x=1")).unwrap_err();
        assert_eq!(missing.code(), "MissingApiVersionParameter");
        let unknown = check_api_version(Some("api-version=1999-01-01")).unwrap_err();
        assert_eq!(unknown.code(), "UnsupportedApiVersionValue");
        assert!(
            unknown.to_string().starts_with(
                "Unsupported api-version '1999-01-01'. The supported api-versions are '2022-11-11-preview, "
            )
        );
    }
}
