//! `GET /v1/operations`: a scope's operations, newest first, paged with an
//! opaque continuation token that stays valid while new operations arrive.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::wire::{OperationBody, OperationPage};
use super::{Error, caller};
use crate::dialect;
use crate::http::error::CoreError;
use crate::model::{Kind, OperationId, Scope, State as OpState, Timestamp};
use crate::service::paging::{decode_token, encode_token};
use crate::service::state::AppState;
use crate::store::ListFilter;

const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

/// Lists operations newest first, paged with `nextLink`.
#[utoipa::path(
    get,
    path = "/v1/operations",
    tag = "Native",
    operation_id = "Operations_List",
    params(
        ("scope" = Option<String>, Query, description = "tenants/{uuid}, projects/{name} or accounts/{name}"),
        ("state" = Option<String>, Query),
        ("kind" = Option<String>, Query),
        ("createdFrom" = Option<String>, Query, format = DateTime, description = "only those created at or after this time (RFC 3339)"),
        ("createdBefore" = Option<String>, Query, format = DateTime, description = "only those created before this time (RFC 3339)"),
        ("maxPageSize" = Option<i32>, Query, minimum = 1, maximum = 1000),
        ("continuationToken" = Option<String>, Query),
    ),
    responses(
        (status = 200, description = "A page", body = super::wire::OperationPage),
        (status = 400, description = "Malformed request", body = crate::dialect::devcenter::wire::ErrorResponse),
        (status = 403, description = "The key lacks the role or scope", body = crate::dialect::devcenter::wire::ErrorResponse),
        super::CommonErrors,
    ),
    security(("bearer" = []))
)]
pub async fn list_operations(
    State(app): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let caller = caller(&app, &headers).await?;
    let query = query.unwrap_or_default();
    let mut filter = ListFilter { limit: DEFAULT_PAGE, ..ListFilter::default() };
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        let bad = |message: String| CoreError::bad_request("InvalidParameter", &name, message);
        match name.as_ref() {
            "scope" => filter.scope = Some(Scope::parse(&value).map_err(|e| bad(e.to_string()))?),
            "state" => {
                filter.state = Some(OpState::parse(&value).ok_or_else(|| bad(format!("unknown state '{value}'")))?)
            }
            "kind" => filter.kind = Some(Kind::parse(&value).map_err(|e| bad(e.to_string()))?),
            "maxPageSize" => {
                filter.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| bad(format!("maxPageSize must be 1..={MAX_PAGE}")))?
            }
            "createdFrom" | "createdBefore" => {
                let at = Timestamp::parse_rfc3339(&value)
                    .ok_or_else(|| bad(format!("'{value}' is not an RFC 3339 time, e.g. 2026-12-08T10:00:00Z")))?;
                match name.as_ref() {
                    "createdFrom" => filter.created_from = Some(at),
                    _ => filter.created_before = Some(at),
                }
            }
            "continuationToken" => {
                filter.after = Some(decode_token(&value).ok_or_else(|| bad("invalid continuation token".into()))?)
            }
            _ => return Err(bad(format!("unknown query parameter '{name}'")).into()),
        }
    }
    filter.scope = caller.narrow(filter.scope.take(), "list")?;
    let page = app.store.list_operations(&filter).await.map_err(CoreError::from)?;
    let next_link = (page.len() == filter.limit as usize)
        .then(|| page.last().map(|last| next_link(&filter, last.created_at, last.id)))
        .flatten();
    let body = OperationPage { value: page.iter().map(OperationBody::from).collect(), next_link };
    Ok(dialect::json(StatusCode::OK, HeaderMap::new(), &body))
}

fn next_link(filter: &ListFilter, at: Timestamp, id: OperationId) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    if let Some(scope) = &filter.scope {
        query.append_pair("scope", &scope.to_string());
    }
    if let Some(state) = filter.state {
        query.append_pair("state", state.as_str());
    }
    if let Some(kind) = &filter.kind {
        query.append_pair("kind", kind.as_ref());
    }
    if let Some(from) = filter.created_from {
        query.append_pair("createdFrom", &from.to_rfc3339_ticks());
    }
    if let Some(before) = filter.created_before {
        query.append_pair("createdBefore", &before.to_rfc3339_ticks());
    }
    query.append_pair("maxPageSize", &filter.limit.to_string());
    query.append_pair("continuationToken", &encode_token(at, id));
    format!("/v1/operations?{}", query.finish())
}
