//! `/v1/webhooks`: register, list and delete receivers (admin role) and
//! inspect their deliveries. Translation only; delivery lives in
//! `crate::worker::webhooks`.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::operations::INVALID_BODY;
use super::{Error, caller};
use crate::dialect;
use crate::http::error::CoreError;
use crate::model::{Delivery, KeyScope, Role, Scope, Webhook};
use crate::service::auth::Principal;
use crate::service::state::AppState;

/// `POST /v1/webhooks` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = Longrun::CreateWebhook)]
pub struct CreateWebhook {
    /// Only this scope's changes (default: the key's own scope, or all for `*`).
    pub scope: Option<String>,
    /// Receiver URL, http or https.
    pub url: String,
    /// `terminal` (default: changes that end an operation) or `all`.
    pub events: Option<String>,
}

/// A webhook as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Longrun::Webhook)]
pub struct WebhookBody {
    /// Id.
    pub id: String,
    /// Scope watched (absent: every scope).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Receiver URL.
    pub url: String,
    /// `terminal` or `all`.
    pub events: &'static str,
    /// The signing secret: shown once, at creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// When it was registered.
    pub created_at: String,
}

/// A delivery as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Longrun::Delivery)]
pub struct DeliveryBody {
    /// Id (the `X-Longrun-Delivery` header).
    pub id: String,
    /// The operation.
    pub operation_id: String,
    /// Its version after the change.
    pub version: i64,
    /// `pending`, `delivered` or `dead`.
    pub state: &'static str,
    /// Attempts so far.
    pub attempts: u32,
    /// Next attempt (pending only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    /// The receiver's last status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_status: Option<u16>,
    /// Why the last attempt failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the change was queued.
    pub created_at: String,
}

/// The webhooks a caller reaches.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Longrun::WebhookPage)]
pub struct WebhookPage {
    /// Oldest first; secrets are never shown again.
    pub value: Vec<WebhookBody>,
}

/// A page of deliveries.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Longrun::DeliveryPage)]
pub struct DeliveryPage {
    /// Newest first.
    pub value: Vec<DeliveryBody>,
}

fn webhook_body(hook: &Webhook, secret: Option<String>) -> WebhookBody {
    WebhookBody {
        id: hook.id.clone(),
        scope: hook.scope.as_ref().map(|s| s.to_string()),
        url: hook.url.clone(),
        events: if hook.all_changes { "all" } else { "terminal" },
        secret,
        created_at: hook.created_at.to_rfc3339_ticks(),
    }
}

fn delivery_body(d: &Delivery) -> DeliveryBody {
    DeliveryBody {
        id: d.id.clone(),
        operation_id: d.operation_id.to_string(),
        version: d.version,
        state: d.state.as_str(),
        attempts: d.attempts,
        next_attempt_at: (d.state == crate::model::DeliveryState::Pending).then(|| d.next_at.to_rfc3339_ticks()),
        last_status: d.last_status,
        last_error: d.last_error.clone(),
        created_at: d.created_at.to_rfc3339_ticks(),
    }
}

/// Registers a webhook; every matching change is delivered at least once, signed.
#[utoipa::path(
    post,
    path = "/v1/webhooks",
    tag = "Native",
    operation_id = "Webhooks_Create",
    request_body(content = CreateWebhook, content_type = "application/json"),
    responses(
        (status = 201, description = "Registered; the secret is shown only now", body = WebhookBody),
        (status = 400, description = "Malformed request", body = crate::dialect::devcenter::wire::ErrorResponse),
        (status = 403, description = "Needs the admin role in the scope", body = crate::dialect::devcenter::wire::ErrorResponse),
        super::CommonErrors, super::WriteErrors, super::BodyErrors,
    ),
    security(("bearer" = []))
)]
pub async fn create_webhook(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: crate::http::body::UnreadBody,
) -> Result<Response, Error> {
    let caller = caller(&app, &headers).await?;
    caller.require(Role::Admin)?;
    let request: CreateWebhook = body.read_json(INVALID_BODY).await?;
    let scope = request
        .scope
        .as_deref()
        .map(Scope::parse)
        .transpose()
        .map_err(|e| CoreError::bad_request("InvalidParameter", "scope", e))?;
    let scope = caller.narrow(scope, "watch")?;
    let url = reqwest::Url::parse(&request.url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some() && request.url.len() <= 2048)
        .ok_or_else(|| CoreError::bad_request("InvalidParameter", "url", "an absolute http or https URL"))?;
    let all_changes = match request.events.as_deref() {
        None | Some("terminal") => false,
        Some("all") => true,
        Some(_) => return Err(CoreError::bad_request("InvalidParameter", "events", "terminal or all").into()),
    };
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("whsec_{}", URL_SAFE_NO_PAD.encode(bytes));
    let hook = Webhook {
        id: format!("wh_{}", Uuid::now_v7().simple()),
        scope,
        url: url.to_string(),
        secret: secret.clone(),
        all_changes,
        start_seq: app.store.latest_change_seq().await.map_err(CoreError::from)?,
        created_at: app.policy.clock.now(),
    };
    app.store.create_webhook(&hook).await.map_err(CoreError::from)?;
    Ok(dialect::json(StatusCode::CREATED, HeaderMap::new(), &webhook_body(&hook, Some(secret))))
}

/// The webhooks the caller reaches, optionally of one scope.
#[utoipa::path(
    get,
    path = "/v1/webhooks",
    tag = "Native",
    operation_id = "Webhooks_List",
    params(("scope" = Option<String>, Query, description = "Only this scope's webhooks")),
    responses(
        (status = 200, description = "Webhooks", body = WebhookPage),
        (status = 400, description = "Malformed request", body = crate::dialect::devcenter::wire::ErrorResponse),
        (status = 403, description = "Needs the admin role in the scope", body = crate::dialect::devcenter::wire::ErrorResponse),
        super::CommonErrors,
    ),
    security(("bearer" = []))
)]
pub async fn list_webhooks(
    State(app): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let caller = caller(&app, &headers).await?;
    caller.require(Role::Admin)?;
    let scope = super::events::requested_scope(&caller, query.as_deref())?;
    let hooks = app.store.list_webhooks().await.map_err(CoreError::from)?;
    let value = hooks
        .iter()
        .filter(|h| reaches(&caller, h) && (scope.is_none() || h.scope == scope))
        .map(|h| webhook_body(h, None))
        .collect();
    Ok(dialect::json(StatusCode::OK, HeaderMap::new(), &WebhookPage { value }))
}

/// Removes a webhook: nothing more is delivered to it, and its pending
/// deliveries are dropped.
#[utoipa::path(
    delete,
    path = "/v1/webhooks/{id}",
    tag = "Native",
    operation_id = "Webhooks_Delete",
    params(("id" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Needs the admin role", body = crate::dialect::devcenter::wire::ErrorResponse),
        (status = 404, description = "No such webhook in the caller's reach", body = crate::dialect::devcenter::wire::ErrorResponse),
        super::CommonErrors, super::WriteErrors,
    ),
    security(("bearer" = []))
)]
pub async fn delete_webhook(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let caller = caller(&app, &headers).await?;
    caller.require(Role::Admin)?;
    find(&app, &caller, &id).await?;
    if !app.store.delete_webhook(&id).await.map_err(CoreError::from)? {
        return Err(no_such_webhook(&id).into()); // deleted meanwhile
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A webhook's deliveries, newest first (the last 100).
#[utoipa::path(
    get,
    path = "/v1/webhooks/{id}/deliveries",
    tag = "Native",
    operation_id = "Webhooks_ListDeliveries",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "Deliveries", body = DeliveryPage),
        (status = 403, description = "Needs the admin role", body = crate::dialect::devcenter::wire::ErrorResponse),
        (status = 404, description = "No such webhook in the caller's reach", body = crate::dialect::devcenter::wire::ErrorResponse),
        super::CommonErrors,
    ),
    security(("bearer" = []))
)]
pub async fn list_deliveries(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let caller = caller(&app, &headers).await?;
    caller.require(Role::Admin)?;
    find(&app, &caller, &id).await?;
    let deliveries = app.store.list_deliveries(&id, 100).await.map_err(CoreError::from)?;
    let page = DeliveryPage { value: deliveries.iter().map(delivery_body).collect() };
    Ok(dialect::json(StatusCode::OK, HeaderMap::new(), &page))
}

/// Whether `caller` may see `hook`: `*` keys see all; others, their scope's.
fn reaches(caller: &Principal, hook: &Webhook) -> bool {
    match (&hook.scope, &caller.scope) {
        (_, KeyScope::All) => true,
        (Some(scope), reach) => reach.covers(scope),
        (None, _) => false,
    }
}

/// The webhook `id` if `caller` reaches it; else "not found", so ids of
/// other scopes cannot be probed.
async fn find(app: &AppState, caller: &Principal, id: &str) -> Result<Webhook, CoreError> {
    let hooks = app.store.list_webhooks().await.map_err(CoreError::from)?;
    hooks.into_iter().find(|h| h.id == id && reaches(caller, h)).ok_or_else(|| no_such_webhook(id))
}

fn no_such_webhook(id: &str) -> CoreError {
    CoreError::NoSuchRoute { path: format!("/v1/webhooks/{id}") }
}
