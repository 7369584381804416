//! The use-cases every front-end shares: create, read, change, cancel. Each
//! checks access, applies the model's rules and talks to the store; the
//! front-ends only translate wire formats around these calls.

use std::sync::Arc;

use serde_json::Value;
use uuid::Uuid;

use crate::http::error::CoreError;
use crate::model::{
    Applied, Kind, NewOperation, Operation, OperationId, Retention, Role, Scope, Script, Timestamp, TransitionError,
};
use crate::service::auth::Principal;
use crate::service::clock::Clock;
use crate::store::{Store, StoreError};

/// How many times a change is re-read and re-applied when another writer
/// got in between (only without `If-Match`; with it, the first loss is a 412).
const MAX_CAS_ATTEMPTS: usize = 16;

/// Service-wide settings the use-cases need.
#[derive(Debug, Clone)]
pub struct Policy {
    /// How long a terminal operation is kept (SPEC §1; at least 24 h).
    pub retention: Retention,
    /// The clock every decision reads.
    pub clock: Clock,
    /// How long a `Repeatability-Request-ID` is remembered (at least 5 min).
    pub repeatability_window: std::time::Duration,
    /// Worker attempts before an operation fails with `WorkerLost`.
    pub max_attempts: u32,
    /// Per-kind exceptions to `max_attempts`.
    pub max_attempts_by_kind: std::collections::HashMap<Kind, u32>,
    /// Per-scope exceptions to `retention`.
    pub retention_by_scope: std::collections::HashMap<Scope, Retention>,
}

/// Worker attempts per operation unless configured otherwise.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// The shortest tracking window OASIS Repeatable Requests allows.
pub const MIN_REPEATABILITY_WINDOW: std::time::Duration = std::time::Duration::from_secs(300);

impl Policy {
    /// The given retention, the system clock, the minimum repeatability window.
    pub fn new(retention: Retention) -> Policy {
        Policy {
            retention,
            clock: Clock::default(),
            repeatability_window: MIN_REPEATABILITY_WINDOW,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            max_attempts_by_kind: Default::default(),
            retention_by_scope: Default::default(),
        }
    }

    /// How long operations of `scope` are kept once finished.
    pub fn retention_for(&self, scope: &Scope) -> &Retention {
        self.retention_by_scope.get(scope).unwrap_or(&self.retention)
    }

    /// Worker attempts allowed for operations of `kind`.
    pub fn max_attempts(&self, kind: &Kind) -> u32 {
        self.max_attempts_by_kind.get(kind).copied().unwrap_or(self.max_attempts)
    }
}

/// The system clock (for callers without a `Policy`, e.g. the key CLI).
pub fn now() -> Timestamp {
    Clock::system_now()
}

/// The result of a create.
#[derive(Debug)]
pub enum Created {
    /// A new operation was stored.
    New(Operation),
    /// The same request (same id, same body) was made before: its operation.
    Existing(Operation),
}

/// The ETags an `If-Match` header lists (`*` matches any version).
#[derive(Debug, Clone)]
pub struct IfMatch(pub Vec<String>);

impl IfMatch {
    fn matches(&self, op: &Operation) -> bool {
        let etag = op.etag();
        self.0.iter().any(|tag| tag == "*" || *tag == etag)
    }
}

/// Creates an operation (produce role, in a scope the key reaches).
pub async fn create(
    store: &dyn Store,
    policy: &Policy,
    caller: &Principal,
    id: Option<OperationId>,
    request: NewOperation,
) -> Result<Created, CoreError> {
    caller.require(Role::Produce)?;
    if !caller.can_read(&request.scope) {
        return Err(CoreError::Forbidden {
            message: format!("this key may not create operations in scope '{}'", request.scope),
        });
    }
    let chosen = id.is_some();
    let id = id.unwrap_or_else(|| OperationId::from_uuid(Uuid::now_v7()));
    let mut op = Operation::new(id, request, policy.clock.now());
    op.traceparent = crate::telemetry::otel::current_traceparent();
    if let Some(script) = &op.script {
        Script::validate(&script.steps, &op).map_err(|e| CoreError::bad_request("InvalidParameter", "script", e))?;
    }
    match store.create_operation(&op).await {
        Ok(()) => {
            crate::telemetry::otel::note_operation(&op.id, &op.scope);
            Ok(Created::New(op))
        }
        Err(StoreError::AlreadyExists) if chosen => {
            let existing = store.get_operation(id).await?;
            match existing {
                Some(existing)
                    if existing.create_fingerprint == op.create_fingerprint && caller.can_read(&existing.scope) =>
                {
                    Ok(Created::Existing(Arc::unwrap_or_clone(existing)))
                }
                _ => Err(CoreError::Conflict {
                    code: "OperationIdInUse",
                    message: format!("operation id '{id}' is already used by a different request"),
                }),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Reads an operation the caller may see and whose scope and kind
/// `visible` accepts; anything else is "not found", so ids of other scopes
/// cannot be probed. An operation past its retention is "expired" to its
/// owner, before the purge (its `expires_at` has passed) and after it (its
/// tombstone), and plain "not found" to everyone else.
pub async fn get(
    store: &dyn Store,
    policy: &Policy,
    caller: &Principal,
    id: OperationId,
    visible: impl Fn(&Scope, &Kind) -> bool,
) -> Result<Arc<Operation>, CoreError> {
    let owned = |scope: &Scope, kind: &Kind| caller.can_read(scope) && visible(scope, kind);
    match store.get_operation(id).await? {
        Some(op) if owned(&op.scope, &op.kind) => {
            crate::telemetry::otel::note_operation(&op.id, &op.scope);
            match op.expires_at {
                Some(at) if at <= policy.clock.now() => Err(CoreError::OperationExpired { id: id.to_string() }),
                _ => Ok(op),
            }
        }
        Some(_) => Err(CoreError::NoSuchOperation { id: id.to_string() }),
        None => match store.find_tombstone(id).await? {
            Some((scope, kind)) if owned(&scope, &kind) => Err(CoreError::OperationExpired { id: id.to_string() }),
            _ => Err(CoreError::NoSuchOperation { id: id.to_string() }),
        },
    }
}

/// Applies a JSON merge patch (produce role).
pub async fn patch(
    store: &dyn Store,
    policy: &Policy,
    caller: &Principal,
    id: OperationId,
    patch: &Value,
    if_match: Option<&IfMatch>,
) -> Result<Operation, CoreError> {
    change(store, policy, caller, id, if_match, |op| {
        let changes = op.merge_patch(patch)?;
        op.apply(changes, policy.clock.now(), policy.retention_for(&op.scope))
    })
    .await
}

/// Cancels an operation (produce role); canceling a Canceled one is a no-op.
pub async fn cancel(
    store: &dyn Store,
    policy: &Policy,
    caller: &Principal,
    id: OperationId,
) -> Result<Operation, CoreError> {
    change(store, policy, caller, id, None, |op| op.cancel(policy.clock.now(), policy.retention_for(&op.scope))).await
}

/// How long the tombstone of a deleted operation answers "expired" to its
/// owner, as after a retention purge.
pub const TOMBSTONE_LIFETIME: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// Deletes a finished operation now (produce role; Google's
/// DeleteOperation: "no longer interested", never a cancel). It then reads
/// as expired to its owner, as after its retention; a running one is
/// refused (cancel it first).
pub async fn delete_finished(
    store: &dyn Store,
    policy: &Policy,
    caller: &Principal,
    id: OperationId,
    visible: impl Fn(&Scope, &Kind) -> bool,
) -> Result<(), CoreError> {
    caller.require(Role::Produce)?;
    let op = get(store, policy, caller, id, visible).await?;
    if !op.state.is_terminal() {
        return Err(CoreError::Conflict {
            code: "OperationNotFinished",
            message: format!("Operation '{id}' is {}: only a finished operation can be deleted.", op.state.as_str()),
        });
    }
    match store.delete_finished(id, policy.clock.now().plus(TOMBSTONE_LIFETIME)).await {
        // A racing delete or purge took it first: it is gone either way.
        Ok(()) | Err(StoreError::NotFound) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Read, decide, compare-and-swap; re-read on a lost race. Every decision
/// is made against the version it is written over, so two racing changes
/// (a cancel and a completion) can never both win.
async fn change(
    store: &dyn Store,
    policy: &Policy,
    caller: &Principal,
    id: OperationId,
    if_match: Option<&IfMatch>,
    decide: impl Fn(&Operation) -> Result<Applied, TransitionError>,
) -> Result<Operation, CoreError> {
    caller.require(Role::Produce)?;
    for _ in 0..MAX_CAS_ATTEMPTS {
        let current = get(store, policy, caller, id, |_, _| true).await?;
        if let Some(expected) = if_match
            && !expected.matches(&current)
        {
            return Err(precondition_failed(&current));
        }
        let next = match decide(&current)? {
            Applied::Unchanged => return Ok(Arc::unwrap_or_clone(current)),
            Applied::Changed(next) => next,
        };
        match store.update_operation(&next, current.version).await {
            Ok(()) => return Ok(*next),
            Err(StoreError::VersionMismatch) => continue,
            Err(StoreError::NotFound) => {
                return Err(CoreError::NoSuchOperation { id: id.to_string() });
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(CoreError::Unavailable("the operation is changing too quickly; retry".into()))
}

fn precondition_failed(current: &Operation) -> CoreError {
    CoreError::PreconditionFailed { message: format!("If-Match does not match the current ETag {}", current.etag()) }
}
