//! `GET /v1/me`: what the presented key or token may do. The dashboard asks it to
//! offer only the scopes a key reaches and the buttons its role allows.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;

use super::{Error, caller};
use crate::dialect;
use crate::service::state::AppState;

/// The caller, as the API shows it (never the secret).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Longrun::Me)]
pub struct MeBody {
    /// The key's public id.
    pub key_id: String,
    /// `*`, the one scope the caller reaches, or several joined by commas.
    pub scope: String,
    /// Each scope the caller reaches (empty for `*`): a token may reach several.
    pub scopes: Vec<String>,
    /// `read`, `produce` or `admin`.
    pub role: &'static str,
}

/// Describes the calling key.
#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "Native",
    operation_id = "Me_Get",
    responses(
        (status = 200, description = "The calling key", body = MeBody),
        super::CommonErrors,
    ),
    security(("bearer" = []))
)]
pub async fn get_me(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, Error> {
    let caller = caller(&app, &headers).await?;
    let scopes = caller.scope.scopes().iter().map(ToString::to_string).collect();
    let body = MeBody { key_id: caller.key_id, scope: caller.scope.to_string(), scopes, role: caller.role.as_str() };
    Ok(dialect::json(StatusCode::OK, HeaderMap::new(), &body))
}
