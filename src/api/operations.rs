//! `/v1/operations` and `/v1/operations/{id}`: create, get, patch, cancel.

use axum::body::Bytes;
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::Value;

use super::repeatability::{self, Repeatable};
use super::wire::{CreateOperation, OperationBody};
use super::{Error, caller};
use crate::dialect::{self, sphere};
use crate::http::body::{UnreadBody, parse_json};
use crate::http::error::CoreError;
use crate::http::headers::RequestHeaders;
use crate::model::{Kind, NewOperation, Operation, OperationId, Role, Scope};
use crate::service::auth::Principal;
use crate::service::operations::{self, Created, IfMatch};
use crate::service::state::AppState;
use crate::service::watch;

/// Creates an operation; `Operation-Location` is the dialect URL to poll.
#[utoipa::path(
    post,
    path = "/v1/operations",
    tag = "Native",
    operation_id = "Operations_Create",
    params(
        ("Operation-Id" = Option<String>, Header, description = "Client-chosen id (a UUID)"),
        ("Repeatability-Request-ID" = Option<String>, Header, description = "OASIS Repeatable Requests: a unique id per logical request"),
        ("Repeatability-First-Sent" = Option<String>, Header, description = "When the first attempt was sent (HTTP date)"),
    ),
    request_body(content = super::wire::CreateOperation, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = OperationBody, headers(("Location" = String), ("Operation-Location" = String), ("Retry-After" = i32), ("ETag" = String))),
        (status = 200, description = "The same request was made before", body = OperationBody),
        (status = 400, description = "Malformed request", body = crate::dialect::devcenter::wire::ErrorResponse),
        (status = 403, description = "The key lacks the role or scope", body = crate::dialect::devcenter::wire::ErrorResponse),
        (status = 409, description = "Conflicts with the operation's state", body = crate::dialect::devcenter::wire::ErrorResponse),
        (status = 412, description = "Repeatability-First-Sent is outside the tracking window", body = crate::dialect::devcenter::wire::ErrorResponse),
        super::CommonErrors, super::WriteErrors, super::BodyErrors,
    ),
    security(("bearer" = []))
)]
pub async fn create_operation(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: UnreadBody,
) -> Result<Response, Error> {
    let caller = caller(&app, &headers).await?;
    caller.require(Role::Produce)?;
    let repeatable = match Repeatable::from_headers(&headers, &app) {
        Ok(repeatable) => repeatable,
        Err(refused) => return Ok(repeatability::rejected(refused)),
    };
    let body = body.read().await?;
    let Some(repeatable) = repeatable else {
        return create(&app, &caller, &headers, &body, None).await;
    };
    // The id follows from the request id, so even a repeat that finds no
    // record (the first attempt's node died after committing) finds the
    // operation instead of making a second one. And the work runs in its
    // own task: a client that hangs up cannot cut it off half-recorded.
    let derived = repeatable.operation_id(&caller);
    // A task-local does not follow a spawn: the trace context is carried in.
    let task = tokio::spawn(crate::telemetry::otel::carry(async move {
        let created = create(&app, &caller, &headers, &body, Some(derived));
        repeatable.run(&app, &caller, &headers, &body, created).await
    }));
    task.await.map_err(|e| CoreError::Internal(anyhow::Error::new(e)).into())
}

async fn create(
    app: &AppState,
    caller: &Principal,
    headers: &HeaderMap,
    body: &Bytes,
    default_id: Option<OperationId>,
) -> Result<Response, Error> {
    let request: CreateOperation = parse_json(body, INVALID_BODY)?;
    let id = chosen_id(headers, request.id.as_deref())?.or(default_id);
    let new = validate(request)?;
    let (status, op) = match operations::create(app.store.as_ref(), &app.policy, caller, id, new).await? {
        Created::New(op) => (StatusCode::CREATED, op),
        Created::Existing(op) => (StatusCode::OK, op),
    };
    let mut headers = dialect::status_headers(&op, app.retry_after);
    headers.insert(header::LOCATION, header_value(&format!("/v1/operations/{}", op.id)));
    headers.insert("operation-location", header_value(&dialect::operation_location(&op)));
    if op.state.is_terminal() {
        // A create replayed after the operation ended still tells the
        // client when to poll; it will find the terminal state at once.
        headers.insert(header::RETRY_AFTER, HeaderValue::from(app.retry_after));
    }
    Ok(dialect::json(status, headers, &OperationBody::from(&op)))
}

/// Reads an operation.
#[utoipa::path(
    get,
    path = "/v1/operations/{id}",
    tag = "Native",
    operation_id = "Operations_Get",
    params(("id" = String, Path, description = "Operation id (a UUID)", format = Uuid), ("If-None-Match" = Option<String>, Header)),
    responses(
        (status = 200, description = "The operation", body = OperationBody, headers(("ETag" = String), ("Retry-After" = i32))),
        (status = 304, description = "Not modified since the ETag in If-None-Match"),
        (status = 400, description = "Malformed request", body = crate::dialect::devcenter::wire::ErrorResponse),
        (status = 404, description = "No such operation in the caller's reach", body = crate::dialect::devcenter::wire::ErrorResponse),
        super::CommonErrors,
    ),
    security(("bearer" = []))
)]
pub async fn get_operation(
    State(app): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    RequestHeaders(headers): RequestHeaders,
) -> Result<Response, Error> {
    if let Some(id) = id.strip_suffix(":wait") {
        return wait_operation(&app, id, query.as_deref(), &headers).await;
    }
    let caller = caller(&app, &headers).await?;
    let id = parse_id(&id)?;
    let op = operations::get(app.store.as_ref(), &app.policy, &caller, id, |_, _| true).await?;
    if let Some(unchanged) = dialect::not_modified(&headers, &op, app.retry_after) {
        return Ok(unchanged);
    }
    Ok(respond(&op, app.retry_after))
}

/// Long-poll: answers as soon as the operation changes, at once when it is
/// terminal or `If-None-Match` names an older ETag, else at the timeout
/// with its current state. (Routed through `get_operation`: the id segment
/// ends with `:wait`.)
#[utoipa::path(
    get,
    path = "/v1/operations/{id}:wait",
    tag = "Native",
    operation_id = "Operations_Wait",
    params(
        ("id" = String, Path, description = "Operation id (a UUID)", format = Uuid),
        ("timeout" = Option<String>, Query, description = "How long to wait, e.g. 30s (default 30s, at most 60s)"),
        ("If-None-Match" = Option<String>, Header, description = "The ETag the client has; wait until it changes"),
    ),
    responses(
        (status = 200, description = "The operation, changed or at the timeout", body = OperationBody),
        (status = 400, description = "Malformed request", body = crate::dialect::devcenter::wire::ErrorResponse),
        (status = 404, description = "No such operation in the caller's reach", body = crate::dialect::devcenter::wire::ErrorResponse),
        super::CommonErrors,
    ),
    security(("bearer" = []))
)]
pub async fn wait_operation(
    app: &AppState,
    id: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response, Error> {
    let caller = caller(app, headers).await?;
    let id = parse_id(id)?;
    let mut timeout = watch::DEFAULT_WAIT;
    for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match name.as_ref() {
            "timeout" => {
                let seconds = value.strip_suffix('s').unwrap_or(&value);
                timeout = seconds
                    .parse::<u64>()
                    .ok()
                    .map(Duration::from_secs)
                    .or_else(|| humantime::parse_duration(&value).ok())
                    .filter(|t| *t <= watch::MAX_WAIT)
                    .ok_or_else(|| {
                        CoreError::bad_request("InvalidParameter", "timeout", "timeout is 0s to 60s, e.g. 30s")
                    })?;
            }
            other => {
                return Err(CoreError::bad_request(
                    "InvalidParameter",
                    other,
                    format!("unknown query parameter '{other}'"),
                )
                .into());
            }
        }
    }
    let wait = watch::Wait {
        up_to: timeout,
        known: crate::http::headers::IfNoneMatch::of(headers),
        stopping: &app.stopping,
        waiters: &app.waiters,
    };
    let op = watch::get_or_wait(app.store.as_ref(), &app.policy, &caller, id, |_, _| true, Some(wait)).await?;
    Ok(respond(&op, app.retry_after))
}

/// Advances an operation with a JSON merge patch.
#[utoipa::path(
    patch,
    path = "/v1/operations/{id}",
    tag = "Native",
    operation_id = "Operations_Update",
    params(("id" = String, Path, description = "Operation id (a UUID)", format = Uuid), ("If-Match" = Option<String>, Header)),
    request_body(content = super::wire::OperationPatch, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "The operation after the change", body = OperationBody),
        (status = 400, description = "Malformed request", body = crate::dialect::devcenter::wire::ErrorResponse),
        (status = 403, description = "The key lacks the role or scope", body = crate::dialect::devcenter::wire::ErrorResponse),
        (status = 404, description = "No such operation in the caller's reach", body = crate::dialect::devcenter::wire::ErrorResponse),
        (status = 409, description = "Conflicts with the operation's state", body = crate::dialect::devcenter::wire::ErrorResponse),
        (status = 412, description = "If-Match does not match", body = crate::dialect::devcenter::wire::ErrorResponse),
        super::CommonErrors, super::WriteErrors, super::BodyErrors,
    ),
    security(("bearer" = []))
)]
pub async fn patch_operation(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: UnreadBody,
) -> Result<Response, Error> {
    let caller = caller(&app, &headers).await?;
    caller.require(Role::Produce)?;
    let id = parse_id(&id)?;
    let patch: Value = body.read_json(INVALID_BODY).await?;
    let if_match = if_match(&headers)?;
    let op = operations::patch(app.store.as_ref(), &app.policy, &caller, id, &patch, if_match.as_ref()).await?;
    Ok(respond(&op, app.retry_after))
}

/// Cancels an operation (a no-op when it is already Canceled).
#[utoipa::path(
    post,
    path = "/v1/operations/{id}:cancel",
    tag = "Native",
    operation_id = "Operations_Cancel",
    params(("id" = String, Path, description = "Operation id (a UUID)", format = Uuid)),
    responses(
        (status = 200, description = "The canceled operation", body = OperationBody),
        (status = 400, description = "Malformed request", body = crate::dialect::devcenter::wire::ErrorResponse),
        (status = 403, description = "The key lacks the role or scope", body = crate::dialect::devcenter::wire::ErrorResponse),
        (status = 404, description = "No such operation in the caller's reach", body = crate::dialect::devcenter::wire::ErrorResponse),
        (status = 409, description = "Conflicts with the operation's state", body = crate::dialect::devcenter::wire::ErrorResponse),
        super::CommonErrors, super::WriteErrors,
    ),
    security(("bearer" = []))
)]
pub async fn post_action(
    State(app): State<AppState>,
    Path(id_action): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let caller = caller(&app, &headers).await?;
    let Some(id) = id_action.strip_suffix(":cancel") else {
        return Err(CoreError::NoSuchRoute { path: format!("/v1/operations/{id_action}") }.into());
    };
    let id = parse_id(id)?;
    let op = operations::cancel(app.store.as_ref(), &app.policy, &caller, id).await?;
    Ok(respond(&op, app.retry_after))
}

/// The error code of a body that is not the JSON expected.
pub(super) const INVALID_BODY: &str = "InvalidRequestContent";

fn respond(op: &Operation, retry_after: u32) -> Response {
    dialect::json(StatusCode::OK, dialect::status_headers(op, retry_after), &OperationBody::from(op))
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).expect("ids, scopes and kinds are URL-safe")
}

fn parse_id(id: &str) -> Result<OperationId, CoreError> {
    OperationId::parse(id)
        .ok_or_else(|| CoreError::bad_request("InvalidParameter", "id", format!("operation id '{id}' is not a UUID")))
}

/// The client-chosen id, from `Operation-Id` or the body (they must agree).
fn chosen_id(headers: &HeaderMap, in_body: Option<&str>) -> Result<Option<OperationId>, CoreError> {
    let in_header = match headers.get("operation-id") {
        Some(v) => {
            Some(v.to_str().map_err(|_| CoreError::bad_request("InvalidParameter", "Operation-Id", "not ASCII"))?)
        }
        None => None,
    };
    match (in_header, in_body) {
        (Some(h), Some(b)) if !h.eq_ignore_ascii_case(b) => Err(CoreError::bad_request(
            "InvalidParameter",
            "id",
            format!("the Operation-Id header '{h}' and the body's id '{b}' differ"),
        )),
        (Some(id), _) | (None, Some(id)) => parse_id(id).map(Some),
        (None, None) => Ok(None),
    }
}

/// Wire → model, naming the field at fault.
fn validate(request: CreateOperation) -> Result<NewOperation, CoreError> {
    let scope = Scope::parse(&request.scope).map_err(|e| CoreError::bad_request("InvalidParameter", "scope", e))?;
    let kind = Kind::parse(&request.kind).map_err(|e| CoreError::bad_request("InvalidParameter", "kind", e))?;
    if matches!(scope, Scope::Tenant(_)) && sphere::operation_type(kind.as_ref()).is_none() {
        return Err(CoreError::bad_request(
            "InvalidParameter",
            "kind",
            format!(
                "kind '{kind}' is not an Azure Sphere operation type; tenant scopes accept {}",
                sphere::OPERATION_TYPES.join(", ")
            ),
        ));
    }
    for (field, value) in
        [("resourceLocation", &request.resource_location), ("detailsLocation", &request.details_location)]
    {
        if value.as_ref().is_some_and(|v| v.len() > 2048) {
            return Err(CoreError::bad_request("InvalidParameter", field, "longer than 2048 bytes"));
        }
    }
    Ok(NewOperation {
        scope,
        kind,
        resource_location: request.resource_location,
        details_location: request.details_location,
        properties: request.properties,
        script: request.script,
    })
}

/// Parses `If-Match: "3"`, `If-Match: "3", "4"` or `If-Match: *`.
fn if_match(headers: &HeaderMap) -> Result<Option<IfMatch>, CoreError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text =
        value.to_str().map_err(|_| CoreError::bad_request("InvalidParameter", "If-Match", "If-Match must be ASCII"))?;
    Ok(Some(IfMatch(text.split(',').map(|tag| tag.trim().to_owned()).collect())))
}
