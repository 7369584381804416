//! Worker-lease use-cases (SPEC §5): claim the oldest NotStarted operation
//! of some kinds, heartbeat, complete; and the sweep that requeues or fails
//! operations whose worker went silent. Every step is a compare-and-swap on
//! the operation's version, so at most one worker holds an operation across
//! every node, and a cancel and a completion never both win.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::http::error::CoreError;
use crate::model::{Heartbeat, Kind, LeaseError, LeaseId, Operation, Role, Scope};
use crate::service::auth::Principal;
use crate::service::operations::{self, Policy};
use crate::store::{Store, StoreError};

/// Candidates read per claim round; workers racing for the oldest one
/// fall through to the next instead of re-reading.
const CANDIDATES: u32 = 8;
/// Claim rounds before reporting "nothing to claim".
const ROUNDS: usize = 4;
/// CAS retries for a heartbeat or completion racing a producer's PATCH.
const RETRIES: usize = 16;
/// Lapsed leases handled per sweep.
const SWEEP_BATCH: u32 = 256;

impl From<LeaseError> for CoreError {
    fn from(e: LeaseError) -> CoreError {
        match e {
            LeaseError::Lost(_) => CoreError::Conflict { code: "LeaseLost", message: e.to_string() },
            LeaseError::Refused(refused) => refused.into(),
        }
    }
}

/// Claims the oldest claimable operation of `kinds`, or `None`.
pub async fn claim(
    store: &dyn Store,
    policy: &Policy,
    caller: &Principal,
    kinds: &[Kind],
    scope: Option<Scope>,
    owner: &str,
    ttl: Duration,
) -> Result<Option<Operation>, CoreError> {
    caller.require(Role::Produce)?;
    let scope = caller.narrow(scope, "lease in")?;
    for _ in 0..ROUNDS {
        let candidates = store.claimable(kinds, scope.as_ref(), CANDIDATES).await?;
        if candidates.is_empty() {
            return Ok(None);
        }
        for op in candidates {
            let Some(claimed) = op.claim(owner, ttl, policy.clock.now()) else { continue };
            match store.update_operation(&claimed, op.version).await {
                Ok(()) => {
                    metrics::counter!("longrun_leases_claimed_total").increment(1);
                    return Ok(Some(claimed));
                }
                Err(StoreError::VersionMismatch | StoreError::NotFound) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(None)
}

/// Extends a lease and records progress (`percentComplete`, `properties`
/// merged); tells the worker when its operation was canceled.
pub async fn heartbeat(
    store: &dyn Store,
    policy: &Policy,
    caller: &Principal,
    lease: LeaseId,
    progress: Map<String, Value>,
    ttl: Duration,
) -> Result<Heartbeat, CoreError> {
    caller.require(Role::Produce)?;
    for _ in 0..RETRIES {
        let current = operations::get(store, policy, caller, lease.operation, |_, _| true).await?;
        let changes = current.merge_patch(&Value::Object(progress.clone()))?;
        let beat = current.heartbeat(lease, changes, ttl, policy.clock.now())?;
        let Heartbeat::Extended(next) = &beat else { return Ok(beat) };
        match store.update_operation(next, current.version).await {
            Ok(()) => return Ok(beat),
            Err(StoreError::VersionMismatch) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(CoreError::Unavailable("the operation is changing too quickly; retry".into()))
}

/// Ends a lease with a terminal result (a merge patch with a terminal `state`).
pub async fn complete(
    store: &dyn Store,
    policy: &Policy,
    caller: &Principal,
    lease: LeaseId,
    result: &Value,
) -> Result<Operation, CoreError> {
    caller.require(Role::Produce)?;
    for _ in 0..RETRIES {
        let current = operations::get(store, policy, caller, lease.operation, |_, _| true).await?;
        let changes = current.merge_patch(result)?;
        let done = current.complete(lease, changes, policy.clock.now(), policy.retention_for(&current.scope))?;
        match store.update_operation(&done, current.version).await {
            Ok(()) => return Ok(done),
            Err(StoreError::VersionMismatch) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(CoreError::Unavailable("the operation is changing too quickly; retry".into()))
}

/// Requeues (or fails, after `max_attempts`) every operation whose lease
/// lapsed; returns how many it moved. Safe on every node at once.
pub async fn sweep(store: &dyn Store, policy: &Policy) -> Result<usize, StoreError> {
    let now = policy.clock.now();
    let mut moved = 0;
    for op in store.expired_leases(now, SWEEP_BATCH).await? {
        let Some(next) = op.expire_lease(now, policy.max_attempts(&op.kind), policy.retention_for(&op.scope)) else {
            continue;
        };
        match store.update_operation(&next, op.version).await {
            Ok(()) => moved += 1,
            Err(StoreError::VersionMismatch | StoreError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(moved)
}
