//! What every handler can reach: the node's shared context, built once by
//! the server and handed to each front-end as axum state.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::http::error::CoreError;
use crate::service::operations::{Created, Policy};
use crate::store::Store;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Where operations and keys live.
    pub store: Arc<dyn Store>,
    /// Retention and other rules of the use-cases.
    pub policy: Arc<Policy>,
    /// Seconds a poller is told to wait (`Retry-After`).
    pub retry_after: u32,
    /// Whether operations started through emulated initiators run the
    /// default demo script (`serve --demo`).
    pub demo: bool,
    /// Cancelled when the server starts shutting down, so long-polls answer
    /// at once instead of holding the graceful shutdown for their timeout.
    /// In an `Arc`: the state is cloned several times per request, and
    /// cloning a token itself takes a lock.
    pub stopping: Arc<CancellationToken>,
    /// Who long-polls which operation.
    pub waiters: Arc<crate::service::waiters::Waiters>,
    /// The trusted bearer-token issuers and their cached signing keys.
    pub tokens: Arc<crate::service::auth::jwt::Tokens>,
    /// When this node's callers last used their keys, until flushed.
    pub key_usage: Arc<crate::service::auth::usage::KeyUsage>,
}

impl AppState {
    /// The caller of a request with `Authorization: Bearer` (a JWT or an
    /// API key), presented to `front`.
    pub async fn bearer_caller(
        &self,
        headers: &axum::http::HeaderMap,
        front: crate::service::auth::jwt::Front,
    ) -> Result<crate::service::auth::Principal, CoreError> {
        // Boxed: authentication (JWT checks, key lookup) is a large future
        // but a short one; unboxed, every handler's future, a long-poll's
        // included, would be as large for its whole life.
        let now = self.policy.clock.now();
        Box::pin(crate::service::auth::authenticate_bearer(
            self.store.as_ref(),
            &self.tokens,
            &self.key_usage,
            headers,
            front,
            now,
        ))
        .await
    }

    /// The caller presenting the API key `secret` (Face's
    /// `Ocp-Apim-Subscription-Key`).
    pub async fn key_caller(&self, secret: Option<&str>) -> Result<crate::service::auth::Principal, CoreError> {
        crate::service::auth::authenticate(self.store.as_ref(), &self.key_usage, secret, self.policy.clock.now()).await
    }

    /// Starts an operation as an emulated initiator (Sphere's upload,
    /// Dev Center's dev-box actions, Face's snapshots) does: in demo mode it
    /// carries the demo flow, ending at the resource `resource` names from
    /// the new operation's id (a snapshot or an image is named after the
    /// operation that makes it, so the emulator finds one from the other);
    /// otherwise a worker advances it.
    pub async fn start_emulated(
        &self,
        caller: &crate::service::auth::Principal,
        mut request: crate::model::NewOperation,
        resource: impl FnOnce(crate::model::OperationId) -> String,
    ) -> Result<crate::model::Operation, CoreError> {
        let id = crate::model::OperationId::from_uuid(uuid::Uuid::now_v7());
        request.script = self.demo.then(|| crate::service::demo::default_script(Some(resource(id))));
        let (Created::New(op) | Created::Existing(op)) =
            crate::service::operations::create(self.store.as_ref(), &self.policy, caller, Some(id), request).await?;
        Ok(op)
    }
}
