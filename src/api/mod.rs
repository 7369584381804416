//! The native producer API (`/v1`, SPEC §5): create, read, list, patch and
//! cancel operations; worker leases. JSON in camelCase; errors in Azure.Core's envelope
//! (shared with the Dev Center dialect).

pub(crate) mod events;
/// `/healthz`.
pub mod health;
pub(crate) mod leases;
pub(crate) mod list;
pub(crate) mod me;
pub(crate) mod operations;
/// OASIS Repeatable Requests on create (public for the fuzz target).
pub mod repeatability;
pub(crate) mod webhooks;
pub(crate) mod wire;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::{delete, get, post};

pub use crate::dialect::devcenter::{CommonErrors, Error, WriteErrors};
use crate::http::error::CoreError;
use crate::service::auth::{self, Principal};
use crate::service::state::AppState;

/// What native routes with a JSON body can answer too (413).
pub type BodyErrors = crate::http::responses::BodyErrors<Error>;
/// What the unauthenticated routes (`/healthz`, `/readyz`, `/metrics`) can
/// answer besides their own responses: their refusals are in the native envelope.
pub type FrontErrors = crate::http::responses::FrontErrors<Error>;

/// Native routes, mounted at the root.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/v1/operations", get(list::list_operations).post(operations::create_operation))
        .route(
            "/v1/operations/{id}",
            get(operations::get_operation).patch(operations::patch_operation).post(operations::post_action),
        )
        .route("/v1/operations/{id}/events", get(events::operation_events))
        .route("/v1/events", get(events::scope_events))
        .route("/v1/me", get(me::get_me))
        .route("/v1/webhooks", post(webhooks::create_webhook).get(webhooks::list_webhooks))
        .route("/v1/webhooks/{id}", delete(webhooks::delete_webhook))
        .route("/v1/webhooks/{id}/deliveries", get(webhooks::list_deliveries))
        .route("/v1/leases", post(leases::claim_lease))
        .route("/v1/leases/{id}", post(leases::lease_action))
}

/// The caller, from `Authorization: Bearer <key>`.
async fn caller(app: &AppState, headers: &HeaderMap) -> Result<Principal, CoreError> {
    app.bearer_caller(headers, auth::jwt::Front::Native).await
}
