//! Background work every node runs: applying due emulator-script steps.
//! Safe on any number of nodes at once: each step is a compare-and-swap on
//! the operation's version, so a step is applied once however many nodes
//! find it due. `run_once` is the single step tests drive directly.

use std::sync::Arc;
use std::time::Duration;

use crate::model::Timestamp;
use crate::ops::{self, Policy};
use crate::store::{Store, StoreError};

/// How often a node looks for due steps; bounds how late a step runs.
const TICK: Duration = Duration::from_millis(100);
/// Most steps applied per tick.
const BATCH: u32 = 256;

/// Runs forever (until the task is aborted).
pub async fn run(store: Arc<dyn Store>, policy: Arc<Policy>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = run_once(store.as_ref(), &policy, ops::now()).await {
            tracing::warn!(error = %e, "script runner: will retry");
        }
    }
}

/// Applies every script step due at `now`; returns how many were applied.
pub async fn run_once(store: &dyn Store, policy: &Policy, now: Timestamp) -> Result<usize, StoreError> {
    let mut applied = 0;
    for op in store.due_scripts(now, BATCH).await? {
        let Some(next) = op.run_script_step(now, policy.retention) else { continue };
        match store.update_operation(&next, op.version).await {
            Ok(()) => applied += 1,
            // Someone else changed it first; if the step is still due, the
            // next tick sees the new version.
            Err(StoreError::VersionMismatch | StoreError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(applied)
}
