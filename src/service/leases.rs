//! Worker-lease use-cases (SPEC §5): claim the oldest NotStarted operation
//! of some kinds, heartbeat, complete; and the sweep that requeues or fails
//! operations whose worker went silent. Every step is a compare-and-swap on
//! the operation's version, so at most one worker holds an operation across
//! every node, and a cancel and a completion never both win.

use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::http::error::CoreError;
use crate::model::{Heartbeat, Kind, LeaseError, LeaseId, Operation, Role, Scope};
use crate::service::auth::Principal;
use crate::service::operations::{self, Policy};
use crate::store::feed::Change;
use crate::store::{Store, StoreError};

/// Candidates read per claim round; workers racing for the oldest one
/// fall through to the next instead of re-reading.
const CANDIDATES: u32 = 8;
/// Claim rounds before reporting "nothing to claim".
const ROUNDS: usize = 4;
/// CAS retries for a heartbeat or completion racing a producer's PATCH.
const RETRIES: usize = 16;
/// How often a waiting claim looks again with no creation announced.
const RECHECK: Duration = Duration::from_secs(1);
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

/// What a worker asks for when it claims.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The kinds it handles.
    pub kinds: Vec<Kind>,
    /// Only this scope (narrowed to the caller's own).
    pub scope: Option<Scope>,
    /// Who is asking, for humans.
    pub owner: String,
    /// How long the lease lasts without a heartbeat.
    pub ttl: Duration,
}

/// Claims the oldest claimable operation of the asked kinds, or `None`.
pub async fn claim(
    store: &dyn Store,
    policy: &Policy,
    caller: &Principal,
    ask: &Claim,
) -> Result<Option<Operation>, CoreError> {
    caller.require(Role::Produce)?;
    let scope = caller.narrow(ask.scope.clone(), "lease in")?;
    for _ in 0..ROUNDS {
        let candidates = store.claimable(&ask.kinds, scope.as_ref(), CANDIDATES).await?;
        if candidates.is_empty() {
            return Ok(None);
        }
        for op in candidates {
            let Some(claimed) = op.claim(&ask.owner, ask.ttl, policy.clock.now()) else { continue };
            match store.update_operation(&claimed, op.version).await {
                Ok(()) => {
                    metrics::counter!("longrun_leases_claimed_total").increment(1);
                    crate::telemetry::otel::note_operation(&claimed.id, &claimed.scope);
                    return Ok(Some(claimed));
                }
                Err(StoreError::VersionMismatch | StoreError::NotFound) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(None)
}

/// Claims as `claim` does; when nothing is claimable, waits up to `wait`
/// for an operation to be created, then claims again (a long-poll: an idle
/// worker holds one request open instead of polling). It also looks again
/// every `RECHECK`, since an operation put back after a lapsed lease, or
/// one another worker lost a race for, announces no creation. Ends early,
/// empty-handed, when the node stops.
pub async fn claim_waiting(
    store: &dyn Store,
    policy: &Policy,
    caller: &Principal,
    ask: &Claim,
    wait: Duration,
    stopping: &CancellationToken,
) -> Result<Option<Operation>, CoreError> {
    let deadline = tokio::time::Instant::now() + wait;
    let scope = caller.narrow(ask.scope.clone(), "lease in")?;
    let _counted = WaitingClaim::start();
    // Listening before the first look: a creation between the look and the wait is not missed.
    let mut feed = store.feed().subscribe();
    loop {
        if let Some(op) = claim(store, policy, caller, ask).await? {
            return Ok(Some(op));
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        tokio::select! {
            () = creation(&mut feed, scope.as_ref()) => {}
            () = tokio::time::sleep_until((now + RECHECK).min(deadline)) => {}
            () = stopping.cancelled() => return Ok(None),
        }
    }
}

/// Counts a claim while it waits (`longrun_waiting_claims`: the idle workers).
struct WaitingClaim;

impl WaitingClaim {
    fn start() -> WaitingClaim {
        metrics::gauge!("longrun_waiting_claims").increment(1.0);
        WaitingClaim
    }
}

impl Drop for WaitingClaim {
    fn drop(&mut self) {
        metrics::gauge!("longrun_waiting_claims").decrement(1.0);
    }
}

/// Returns at the next creation in `scope` (in any scope when `None`), or
/// when the feed lagged and creations may have been missed.
async fn creation(feed: &mut broadcast::Receiver<Change>, scope: Option<&Scope>) {
    loop {
        match feed.recv().await {
            Ok(change) if change.version == 1 && scope.is_none_or(|s| *s == change.scope) => return,
            Ok(_) => continue,
            Err(RecvError::Lagged(_)) => return,
            Err(RecvError::Closed) => return std::future::pending().await,
        }
    }
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

/// Hands a held operation back for another worker, at once.
pub async fn release(
    store: &dyn Store,
    policy: &Policy,
    caller: &Principal,
    lease: LeaseId,
) -> Result<Operation, CoreError> {
    caller.require(Role::Produce)?;
    for _ in 0..RETRIES {
        let current = operations::get(store, policy, caller, lease.operation, |_, _| true).await?;
        let released = current.release(lease, policy.clock.now())?;
        match store.update_operation(&released, current.version).await {
            Ok(()) => return Ok(released),
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
        let span = crate::telemetry::otel::linked_span("lease lapsed", &op.id, op.traceparent.as_deref());
        match store.update_operation(&next, op.version).instrument(span.clone()).await {
            Ok(()) => {
                span.record("longrun.outcome", next.state.as_str());
                moved += 1
            }
            Err(StoreError::VersionMismatch | StoreError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(moved)
}
