//! `/v1/leases`: workers claim operations, heartbeat, and complete them
//! (SPEC §5). Translation only; the rules live in `leases` and the model.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::operations::INVALID_BODY;
use super::wire::{ClaimLease, LeaseBody, LeaseHeartbeat, OperationBody};
use super::{Error, caller};
use crate::dialect;
use crate::http::body::UnreadBody;
use crate::http::body::parse_json;
use crate::http::error::CoreError;
use crate::model::{Heartbeat, Kind, LeaseId, Operation, Role, Scope};
use crate::service::state::AppState;
use crate::service::{leases, watch};

const DEFAULT_TTL: Duration = Duration::from_secs(30);
const MIN_TTL: Duration = Duration::from_secs(1);
const MAX_TTL: Duration = Duration::from_secs(3600);

/// Claims the oldest NotStarted operation of the given kinds; 204 when none
/// waits. With `Prefer: wait=N` it waits up to N seconds (at most 60) for
/// one to be created before answering 204: an idle worker's long-poll.
#[utoipa::path(
    post,
    path = "/v1/leases",
    tag = "Native",
    operation_id = "Leases_Claim",
    params(("Prefer" = Option<String>, Header, description = "wait=N: wait up to N seconds (≤ 60) for an operation to claim")),
    request_body(content = ClaimLease, content_type = "application/json"),
    responses(
        (status = 201, description = "Claimed: the operation is now Running under this lease", body = LeaseBody),
        (status = 204, description = "Nothing to claim"),
        (status = 400, description = "Malformed request", body = crate::dialect::devcenter::wire::ErrorResponse),
        (status = 403, description = "The key lacks the role or scope", body = crate::dialect::devcenter::wire::ErrorResponse),
        super::CommonErrors, super::WriteErrors, super::BodyErrors,
    ),
    security(("bearer" = []))
)]
pub async fn claim_lease(State(app): State<AppState>, headers: HeaderMap, body: UnreadBody) -> Result<Response, Error> {
    let caller = caller(&app, &headers).await?;
    caller.require(Role::Produce)?;
    let request: ClaimLease = body.read_json(INVALID_BODY).await?;
    if request.kinds.is_empty() || request.kinds.len() > 64 {
        return Err(CoreError::bad_request("InvalidParameter", "kinds", "list 1 to 64 kinds").into());
    }
    let kinds = request
        .kinds
        .iter()
        .map(|k| Kind::parse(k))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CoreError::bad_request("InvalidParameter", "kinds", e))?;
    let scope = request
        .scope
        .as_deref()
        .map(Scope::parse)
        .transpose()
        .map_err(|e| CoreError::bad_request("InvalidParameter", "scope", e))?;
    let ttl = parse_ttl(request.ttl.as_deref())?;
    let owner = request.owner.unwrap_or_else(|| caller.key_id.clone());
    if owner.len() > 256 {
        return Err(CoreError::bad_request("InvalidParameter", "owner", "at most 256 bytes").into());
    }
    let ask = leases::Claim { kinds, scope, owner, ttl };
    let claimed = match watch::prefer_wait(&headers) {
        Some(wait) => {
            let (store, policy) = (app.store.as_ref(), &app.policy);
            leases::claim_waiting(store, policy, &caller, &ask, wait, &app.stopping).await?
        }
        None => leases::claim(app.store.as_ref(), &app.policy, &caller, &ask).await?,
    };
    match claimed {
        Some(op) => {
            crate::telemetry::otel::join_operation_trace(op.traceparent.as_deref());
            Ok(respond(StatusCode::CREATED, &op, false))
        }
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// Heartbeats (`:heartbeat`) or completes (`:complete`) a lease.
#[utoipa::path(
    post,
    path = "/v1/leases/{leaseId}:heartbeat",
    tag = "Native",
    operation_id = "Leases_Heartbeat",
    params(("leaseId" = String, Path, description = "{operationId}.{attempt}")),
    request_body(content = LeaseHeartbeat, content_type = "application/json"),
    responses(
        (status = 200, description = "Extended; `canceled: true` means stop working", body = LeaseBody),
        (status = 400, description = "Malformed request", body = crate::dialect::devcenter::wire::ErrorResponse),
        (status = 403, description = "The key lacks the role", body = crate::dialect::devcenter::wire::ErrorResponse),
        (status = 404, description = "No such operation in the caller's reach", body = crate::dialect::devcenter::wire::ErrorResponse),
        (status = 409, description = "The lease is no longer held (LeaseLost), or the change breaks a rule", body = crate::dialect::devcenter::wire::ErrorResponse),
        super::CommonErrors, super::WriteErrors, super::BodyErrors,
    ),
    security(("bearer" = []))
)]
pub async fn lease_action(
    State(app): State<AppState>,
    Path(id_action): Path<String>,
    headers: HeaderMap,
    body: UnreadBody,
) -> Result<Response, Error> {
    let caller = caller(&app, &headers).await?;
    caller.require(Role::Produce)?;
    let (id, action) =
        id_action.rsplit_once(':').ok_or_else(|| CoreError::NoSuchRoute { path: format!("/v1/leases/{id_action}") })?;
    let lease = LeaseId::parse(id).ok_or_else(|| {
        CoreError::bad_request("InvalidParameter", "leaseId", "a lease id is {operationId}.{attempt}")
    })?;
    let body = body.read().await?;
    match action {
        "heartbeat" => {
            let request: LeaseHeartbeat = if body.is_empty() {
                LeaseHeartbeat { percent_complete: None, properties: None, ttl: None }
            } else {
                parse_json(&body, INVALID_BODY)?
            };
            let mut progress = Map::new();
            if let Some(p) = request.percent_complete {
                progress.insert("percentComplete".into(), p.into());
            }
            if let Some(properties) = request.properties {
                progress.insert("properties".into(), Value::Object(properties));
            }
            let ttl = parse_ttl(request.ttl.as_deref())?;
            match leases::heartbeat(app.store.as_ref(), &app.policy, &caller, lease, progress, ttl).await? {
                Heartbeat::Extended(op) => Ok(respond(StatusCode::OK, &op, false)),
                Heartbeat::Canceled(op) => Ok(respond(StatusCode::OK, &op, true)),
            }
        }
        "complete" => {
            let result: Value = parse_json(&body, INVALID_BODY)?;
            let op = leases::complete(app.store.as_ref(), &app.policy, &caller, lease, &result).await?;
            Ok(respond(StatusCode::OK, &op, false))
        }
        "release" => {
            let op = leases::release(app.store.as_ref(), &app.policy, &caller, lease).await?;
            Ok(respond(StatusCode::OK, &op, false))
        }
        _ => Err(CoreError::NoSuchRoute { path: format!("/v1/leases/{id_action}") }.into()),
    }
}

fn parse_ttl(ttl: Option<&str>) -> Result<Duration, CoreError> {
    let Some(text) = ttl else { return Ok(DEFAULT_TTL) };
    humantime::parse_duration(text).ok().filter(|d| (MIN_TTL..=MAX_TTL).contains(d)).ok_or_else(|| {
        CoreError::bad_request("InvalidParameter", "ttl", "ttl is a duration from 1s to 1h, e.g. \"30s\"")
    })
}

fn respond(status: StatusCode, op: &Operation, canceled: bool) -> Response {
    let body = LeaseBody {
        lease_id: LeaseId { operation: op.id, attempt: op.attempts }.to_string(),
        attempt: op.attempts,
        expires_at: op.lease.as_ref().map(|l| l.expires_at.to_rfc3339_ticks()),
        canceled,
        traceparent: op.traceparent.clone(),
        operation: OperationBody::from(op),
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, HeaderValue::from_str(&op.etag()).expect("digits and quotes"));
    dialect::json(status, headers, &body)
}
