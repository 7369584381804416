//! google.longrunning.Operations over HTTP/JSON: Get, List, Cancel, Wait
//! and Delete under `/v1/{scope}/operations`, as google-api-core's REST
//! transport calls them (Wait, which it lacks, as `:wait?timeout=30s`).

use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;

use super::{Error, render, wire};
use crate::dialect::json;
use crate::http::error::CoreError;
use crate::model::{OperationId, Scope};
use crate::service::auth::jwt::Front;
use crate::service::state::AppState;
use crate::service::watch;

/// GetOperation.
#[utoipa::path(
    get,
    path = "/v1/projects/{project}/operations/{operationId}",
    tag = "Google",
    operation_id = "Operations_GetOperation",
    params(("project" = String, Path, pattern = "^[a-zA-Z0-9][a-zA-Z0-9-_.]{2,62}$"), ("operationId" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "The operation", body = super::wire::Operation),
        (status = 400, description = "A malformed name", body = super::wire::ErrorResponse),
        (status = 404, description = "No such operation in the caller's reach", body = super::wire::ErrorResponse),
        super::CommonErrors,
    ),
    security(("bearer" = []))
)]
pub async fn get_operation(State(app): State<AppState>, uri: Uri, headers: HeaderMap) -> Result<Response, Error> {
    let caller = app.bearer_caller(&headers, Front::Native).await?;
    let (scope, id) = operation_target(uri.path())?;
    let op = super::get(&app, &caller, &scope, id).await?;
    Ok(json(StatusCode::OK, HeaderMap::new(), &render(&op)))
}

/// ListOperations: the scope's operations, newest first.
#[utoipa::path(
    get,
    path = "/v1/projects/{project}/operations",
    tag = "Google",
    operation_id = "Operations_ListOperations",
    params(
        ("project" = String, Path, pattern = "^[a-zA-Z0-9][a-zA-Z0-9-_.]{2,62}$"),
        ("filter" = Option<String>, Query, description = "done = true|false, state = \"Running\", kind = \"x\", joined by AND"),
        ("pageSize" = Option<i32>, Query),
        ("pageToken" = Option<String>, Query),
    ),
    responses(
        (status = 200, description = "A page of operations", body = super::wire::ListOperationsResponse),
        (status = 400, description = "A malformed filter, size or token", body = super::wire::ErrorResponse),
        (status = 403, description = "The scope is out of the key's reach", body = super::wire::ErrorResponse),
        super::CommonErrors,
    ),
    security(("bearer" = []))
)]
pub async fn list_operations(
    State(app): State<AppState>,
    uri: Uri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let caller = app.bearer_caller(&headers, Front::Native).await?;
    // The route ends in `/operations`: nothing follows it.
    let (scope, _) = target(uri.path())?;
    let mut request = super::ListRequest::default();
    for (name, value) in form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes()) {
        let bad = |message: String| CoreError::bad_request("InvalidArgument", &name, message);
        match name.as_ref() {
            "filter" => request.filter = value.into_owned(),
            "pageSize" => {
                request.page_size = value.parse().map_err(|_| bad(format!("pageSize '{value}' is not an integer")))?
            }
            "pageToken" => request.page_token = value.into_owned(),
            // Sent by some transports; longrun has no unreachable parts.
            "returnPartialSuccess" | "$alt" => {}
            _ => return Err(bad(format!("unknown query parameter '{name}'")).into()),
        }
    }
    let (page, next_page_token) = super::list(&app, &caller, scope, &request).await?;
    let operations = page.iter().map(render).collect();
    Ok(json(StatusCode::OK, HeaderMap::new(), &wire::ListOperationsResponse { operations, next_page_token }))
}

/// `POST {name}:cancel` and `POST {name}:wait`, told apart by the suffix.
pub async fn operation_action(
    State(app): State<AppState>,
    uri: Uri,
    query: RawQuery,
    headers: HeaderMap,
) -> Result<Response, Error> {
    if uri.path().ends_with(":cancel") {
        cancel_operation(State(app), uri, headers).await
    } else if uri.path().ends_with(":wait") {
        wait_operation(State(app), uri, query, headers).await
    } else {
        Err(CoreError::NoSuchRoute { path: uri.path().to_owned() }.into())
    }
}

/// CancelOperation: best effort; the operation ends Canceled.
#[utoipa::path(
    post,
    path = "/v1/projects/{project}/operations/{operationId}:cancel",
    tag = "Google",
    operation_id = "Operations_CancelOperation",
    params(("project" = String, Path, pattern = "^[a-zA-Z0-9][a-zA-Z0-9-_.]{2,62}$"), ("operationId" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "Canceled (or already finished as canceled)", body = super::wire::Empty),
        (status = 400, description = "A malformed name, or the operation finished otherwise", body = super::wire::ErrorResponse),
        (status = 403, description = "The key may not change operations", body = super::wire::ErrorResponse),
        (status = 404, description = "No such operation in the caller's reach", body = super::wire::ErrorResponse),
        super::CommonErrors, super::WriteErrors,
    ),
    security(("bearer" = []))
)]
pub async fn cancel_operation(State(app): State<AppState>, uri: Uri, headers: HeaderMap) -> Result<Response, Error> {
    let caller = app.bearer_caller(&headers, Front::Native).await?;
    let (scope, id) = action_target(uri.path(), ":cancel")?;
    super::cancel(&app, &caller, &scope, id).await?;
    Ok(json(StatusCode::OK, HeaderMap::new(), &wire::Empty {}))
}

/// WaitOperation: answers once the operation is done, or at the timeout
/// (default 30 s, at most 60 s) as it is then.
#[utoipa::path(
    post,
    path = "/v1/projects/{project}/operations/{operationId}:wait",
    tag = "Google",
    operation_id = "Operations_WaitOperation",
    params(
        ("project" = String, Path, pattern = "^[a-zA-Z0-9][a-zA-Z0-9-_.]{2,62}$"), ("operationId" = String, Path, format = Uuid),
        ("timeout" = Option<String>, Query, description = "A duration like 30s"),
    ),
    responses(
        (status = 200, description = "The operation, done or as it is at the timeout", body = super::wire::Operation),
        (status = 400, description = "A malformed name or timeout", body = super::wire::ErrorResponse),
        (status = 404, description = "No such operation in the caller's reach", body = super::wire::ErrorResponse),
        super::CommonErrors,
    ),
    security(("bearer" = []))
)]
pub async fn wait_operation(
    State(app): State<AppState>,
    uri: Uri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let caller = app.bearer_caller(&headers, Front::Native).await?;
    let (scope, id) = action_target(uri.path(), ":wait")?;
    let up_to = wait_timeout(query.as_deref())?;
    let op = super::wait(&app, &caller, &scope, id, up_to).await?;
    Ok(json(StatusCode::OK, HeaderMap::new(), &render(&op)))
}

/// DeleteOperation: "no longer interested" in a finished operation; it
/// then reads as NOT_FOUND. A running one is FAILED_PRECONDITION.
#[utoipa::path(
    delete,
    path = "/v1/projects/{project}/operations/{operationId}",
    tag = "Google",
    operation_id = "Operations_DeleteOperation",
    params(("project" = String, Path, pattern = "^[a-zA-Z0-9][a-zA-Z0-9-_.]{2,62}$"), ("operationId" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "Deleted", body = super::wire::Empty),
        (status = 400, description = "A malformed name, or the operation is not finished", body = super::wire::ErrorResponse),
        (status = 403, description = "The key may not change operations", body = super::wire::ErrorResponse),
        (status = 404, description = "No such operation in the caller's reach", body = super::wire::ErrorResponse),
        super::CommonErrors, super::WriteErrors,
    ),
    security(("bearer" = []))
)]
pub async fn delete_operation(State(app): State<AppState>, uri: Uri, headers: HeaderMap) -> Result<Response, Error> {
    let caller = app.bearer_caller(&headers, Front::Native).await?;
    let (scope, id) = operation_target(uri.path())?;
    super::delete(&app, &caller, &scope, id).await?;
    Ok(json(StatusCode::OK, HeaderMap::new(), &wire::Empty {}))
}

/// The scope of `/v1/{collection}/{name}/operations[/{rest}]`, and the rest.
fn target(path: &str) -> Result<(Scope, Option<&str>), CoreError> {
    let bad = || CoreError::bad_request("InvalidArgument", "name", format!("'{path}' names no operation"));
    let mut parts = path.strip_prefix("/v1/").ok_or_else(bad)?.splitn(4, '/');
    let (collection, name, operations) = (parts.next(), parts.next(), parts.next());
    let (Some(collection), Some(name), Some("operations")) = (collection, name, operations) else { return Err(bad()) };
    Ok((super::parse_scope(&format!("{collection}/{name}"))?, parts.next()))
}

/// The scope and id of `/v1/{scope}/operations/{id}` (no action).
fn operation_target(path: &str) -> Result<(Scope, OperationId), CoreError> {
    let (scope, rest) = target(path)?;
    let id = rest.ok_or_else(|| CoreError::NoSuchRoute { path: path.to_owned() })?;
    Ok((scope, super::parse_id(id)?))
}

/// The scope and id of `/v1/{scope}/operations/{id}{suffix}`.
fn action_target(path: &str, suffix: &str) -> Result<(Scope, OperationId), CoreError> {
    operation_target(path.strip_suffix(suffix).unwrap_or(path))
}

/// WaitOperation's `timeout` (a JSON Duration: `30s`, `1.5s`), capped.
fn wait_timeout(query: Option<&str>) -> Result<Duration, CoreError> {
    let mut timeout = watch::DEFAULT_WAIT;
    for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let bad = |message: String| CoreError::bad_request("InvalidArgument", &name, message);
        match name.as_ref() {
            "timeout" => {
                let seconds = value
                    .strip_suffix('s')
                    .and_then(|s| s.parse::<f64>().ok())
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .ok_or_else(|| bad(format!("timeout '{value}' is not a duration like 30s")))?;
                timeout = Duration::from_secs_f64(seconds.min(watch::MAX_WAIT.as_secs_f64()));
            }
            "$alt" => {}
            _ => return Err(bad(format!("unknown query parameter '{name}'"))),
        }
    }
    Ok(timeout)
}
