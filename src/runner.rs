//! Background work every node runs: applying due emulator-script steps,
//! delivering webhooks (in a loop of their own),
//! sweeping lapsed worker leases, and purging operations whose retention ended. Safe on any number of nodes at
//! once: a script step is a compare-and-swap on the operation's version, and
//! a purge deletes each row once. `run_scripts_once` and `purge_once` are
//! the single steps tests drive directly.

use std::sync::Arc;
use std::time::Duration;

use crate::model::Timestamp;
use crate::ops::Policy;
use crate::store::{Store, StoreError};

/// How often a node looks for due steps; bounds how late a step runs.
const TICK: Duration = Duration::from_millis(100);
/// Most steps applied per tick.
const BATCH: u32 = 256;
/// How often a node purges expired operations.
const PURGE_EVERY: Duration = Duration::from_secs(60);
/// Most operations deleted per statement, so a purge never holds the
/// database (or SQLite's single writer) for long.
const PURGE_BATCH: u32 = 1000;
/// How long a purged operation's tombstone answers "expired".
pub const TOMBSTONE_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// Runs forever (until the task is aborted). Webhooks go out from a loop of
/// their own, so a slow receiver never delays script steps or lease sweeps.
pub async fn run(store: Arc<dyn Store>, policy: Arc<Policy>) {
    let webhooks = tokio::spawn(run_webhooks(store.clone(), policy.clone()));
    // Aborting `run` drops this guard, which stops the webhook loop too.
    let _webhooks = AbortOnDrop(webhooks);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_purge: Option<tokio::time::Instant> = None;
    loop {
        tick.tick().await;
        if let Err(e) = run_scripts_once(store.as_ref(), &policy, policy.clock.now()).await {
            tracing::warn!(error = %e, "script runner: will retry");
        }
        match crate::leases::sweep(store.as_ref(), &policy).await {
            Ok(0) => {}
            Ok(moved) => {
                metrics::counter!("longrun_leases_expired_total").increment(moved as u64);
                tracing::info!(moved, "requeued or failed operations whose worker lease lapsed");
            }
            Err(e) => tracing::warn!(error = %e, "lease sweep: will retry"),
        }
        if last_purge.is_none_or(|at| at.elapsed() >= PURGE_EVERY) {
            last_purge = Some(tokio::time::Instant::now());
            match purge_once(store.as_ref(), &policy).await {
                Ok(0) => {}
                Ok(purged) => {
                    metrics::counter!("longrun_operations_purged_total").increment(purged);
                    tracing::info!(purged, "purged expired operations");
                }
                Err(e) => tracing::warn!(error = %e, "purge: will retry"),
            }
        }
    }
}

/// Fills the webhook outbox from the change log and delivers what is due.
async fn run_webhooks(store: Arc<dyn Store>, policy: Arc<Policy>) {
    let client = reqwest::Client::builder().user_agent(concat!("longrun/", env!("CARGO_PKG_VERSION"))).build();
    let client = match client {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the webhook HTTP client; webhooks will not be delivered");
            reqwest::Client::new()
        }
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(crate::webhooks::SEND_CONCURRENCY));
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = crate::webhooks::enqueue_once(store.as_ref(), &policy).await {
            tracing::warn!(error = %e, "webhook outbox: will retry");
        }
        if let Err(e) = crate::webhooks::deliver_once(&store, &policy, &client, &slots).await {
            tracing::warn!(error = %e, "webhook delivery: will retry");
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Applies every script step due at `now`; returns how many were applied.
pub async fn run_scripts_once(store: &dyn Store, policy: &Policy, now: Timestamp) -> Result<usize, StoreError> {
    let mut applied = 0;
    for op in store.due_scripts(now, BATCH).await? {
        let Some(next) = op.run_script_step(now, policy.retention_for(&op.scope)) else { continue };
        match store.update_operation(&next, op.version).await {
            Ok(()) => {
                metrics::counter!("longrun_script_steps_total").increment(1);
                applied += 1;
            }
            // Someone else changed it first; if the step is still due, the
            // next tick sees the new version.
            Err(StoreError::VersionMismatch | StoreError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(applied)
}

/// Deletes every operation whose retention ended, in bounded batches,
/// leaving tombstones; returns how many went.
pub async fn purge_once(store: &dyn Store, policy: &Policy) -> Result<u64, StoreError> {
    let now = policy.clock.now();
    let mut total = 0;
    loop {
        let purged = store.purge_expired(now, now.plus(TOMBSTONE_LIFETIME), PURGE_BATCH).await?;
        total += purged;
        if purged < u64::from(PURGE_BATCH) {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}
