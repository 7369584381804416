//! Background work every node runs: applying due emulator-script steps,
//! delivering webhooks (in a loop of their own), sweeping lapsed worker
//! leases, and purging operations whose retention ended. Each loop sleeps
//! until its next due time or a change, never polls: an idle node makes a
//! few store reads per `IDLE_RECHECK`. Safe on any number of nodes at once:
//! a script step is a compare-and-swap on the operation's version, and a
//! purge deletes each row once. `run_scripts_once` and `purge_once` are the
//! single steps tests drive directly.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, broadcast, watch};
use tokio::time::Instant;
use tracing::Instrument;

use crate::model::Timestamp;
use crate::service::operations::Policy;
use crate::store::feed::Change;
use crate::store::{Store, StoreError};

/// Least time between two rounds of one loop, however busy: bounds the
/// store reads background work makes under load.
const TICK: Duration = Duration::from_millis(100);
/// Longest a loop sleeps with nothing due: a safety net for a change it was
/// not told of. Idle, each loop makes three store reads per recheck.
const IDLE_RECHECK: Duration = Duration::from_secs(10);
/// How long a loop waits after a failed round before the next.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);
/// Most steps applied per round.
const BATCH: u32 = 256;
/// How often a node purges expired operations.
const PURGE_EVERY: Duration = Duration::from_secs(60);
/// Most operations deleted per statement, so a purge never holds the
/// database (or SQLite's single writer) for long.
const PURGE_BATCH: u32 = 1000;
/// How long a purged operation's tombstone answers "expired".
pub const TOMBSTONE_LIFETIME: Duration = crate::service::operations::TOMBSTONE_LIFETIME;

/// Runs forever (until the task is aborted). Webhooks go out from a loop of
/// their own, so a slow receiver never delays script steps or lease sweeps.
pub async fn run(store: Arc<dyn Store>, policy: Arc<Policy>) {
    let webhooks = tokio::spawn(run_webhooks(store.clone(), policy.clone()));
    // Aborting `run` drops this guard, which stops the webhook loop too.
    let _webhooks = AbortOnDrop(webhooks);
    let mut wake = Wake::new(store.as_ref(), &policy, None);
    let mut last_purge: Option<Instant> = None;
    loop {
        if let Err(e) = run_scripts_once(store.as_ref(), &policy, policy.clock.now()).await {
            tracing::warn!(error = %e, "script runner: will retry");
        }
        match crate::service::leases::sweep(store.as_ref(), &policy).await {
            Ok(0) => {}
            Ok(moved) => {
                metrics::counter!("longrun_leases_expired_total").increment(moved as u64);
                tracing::info!(moved, "requeued or failed operations whose worker lease lapsed");
            }
            Err(e) => tracing::warn!(error = %e, "lease sweep: will retry"),
        }
        if last_purge.is_none_or(|at| at.elapsed() >= PURGE_EVERY) {
            last_purge = Some(Instant::now());
            match purge_once(store.as_ref(), &policy).await {
                Ok(0) => {}
                Ok(purged) => {
                    metrics::counter!("longrun_operations_purged_total").increment(purged);
                    tracing::info!(purged, "purged expired operations");
                }
                Err(e) => tracing::warn!(error = %e, "purge: will retry"),
            }
        }
        let next_purge = last_purge.map(|at| at + PURGE_EVERY);
        wake.until(store.next_work_due().await, next_purge).await;
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
    let slots = Arc::new(tokio::sync::Semaphore::new(crate::worker::webhooks::SEND_CONCURRENCY));
    let finished = Arc::new(Notify::new());
    let mut wake = Wake::new(store.as_ref(), &policy, Some(finished.clone()));
    loop {
        if let Err(e) = crate::worker::webhooks::enqueue_once(store.as_ref(), &policy).await {
            tracing::warn!(error = %e, "webhook outbox: will retry");
        }
        if let Err(e) = crate::worker::webhooks::deliver_once(&store, &policy, &client, &slots, &finished).await {
            tracing::warn!(error = %e, "webhook delivery: will retry");
        }
        wake.until(store.next_delivery_due().await, None).await;
    }
}

/// What a background loop sleeps on between rounds: the next due time its
/// store reports, a committed change, the clock being moved (tests), a
/// nudge from its own tasks, or else `IDLE_RECHECK`.
struct Wake {
    changes: broadcast::Receiver<Change>,
    clock_moves: watch::Receiver<()>,
    nudges: Option<Arc<Notify>>,
    clock: crate::service::clock::Clock,
    last_round: Instant,
}

impl Wake {
    fn new(store: &dyn Store, policy: &Policy, nudges: Option<Arc<Notify>>) -> Wake {
        Wake {
            changes: store.feed().subscribe(),
            clock_moves: policy.clock.watch_moves(),
            nudges,
            clock: policy.clock.clone(),
            last_round: Instant::now(),
        }
    }

    /// Returns when the next round should run: at `due` (a store time, or
    /// the failure to read one) or `also` (a local instant), whichever is
    /// first, or sooner if something changed; never sooner than `TICK` after
    /// the last round.
    async fn until(&mut self, due: Result<Option<Timestamp>, StoreError>, also: Option<Instant>) {
        let now = Instant::now();
        let mut deadline = match due {
            Ok(Some(due)) => now + time_until(self.clock.now(), due),
            Ok(None) => now + IDLE_RECHECK,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read when background work is next due; will retry");
                now + RETRY_AFTER_FAILURE
            }
        };
        deadline = deadline.min(now + IDLE_RECHECK).min(also.unwrap_or(deadline));
        let nudged = async {
            match &self.nudges {
                Some(nudges) => nudges.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => {}
            changed = self.changes.recv() => {
                if matches!(changed, Err(broadcast::error::RecvError::Closed)) {
                    tokio::time::sleep_until(deadline).await; // no feed: time alone
                }
            }
            _ = self.clock_moves.changed() => {}
            () = nudged => {}
        }
        tokio::time::sleep_until(self.last_round + TICK).await;
        // Changes that came meanwhile are all handled by the next round.
        while !matches!(
            self.changes.try_recv(),
            Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed)
        ) {}
        self.last_round = Instant::now();
    }
}

/// How long from `now` until `due` (zero when it is past).
fn time_until(now: Timestamp, due: Timestamp) -> Duration {
    Duration::from_nanos(due.unix_nanos().saturating_sub(now.unix_nanos()).max(0) as u64)
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
        let span = crate::telemetry::otel::linked_span("script step", &op.id, op.traceparent.as_deref());
        match store.update_operation(&next, op.version).instrument(span.clone()).await {
            Ok(()) => {
                span.record("longrun.outcome", next.state.as_str());
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
