//! Who is waiting for which operation. One task per node reads the change
//! feed and wakes exactly the long-polls of the operation that changed, so
//! a change costs O(its waiters), not O(all waiters), and waiting costs no
//! database query at all.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use crate::model::OperationId;
use crate::store::feed::Change;

/// Sent to every waiter when the feed lagged: "re-read, something changed".
pub const RESYNC: i64 = i64::MAX;
/// Prune forgotten entries every this many subscriptions.
const PRUNE_EVERY: u64 = 1024;

/// The waiters of each operation, keyed by id.
#[derive(Debug, Default)]
pub struct Waiters {
    by_operation: Mutex<HashMap<OperationId, broadcast::Sender<i64>>>,
    subscriptions: AtomicU64,
}

impl Waiters {
    /// A receiver of the versions `id` moves to (or `RESYNC`) from now on.
    pub fn subscribe(&self, id: OperationId) -> broadcast::Receiver<i64> {
        let mut map = self.by_operation.lock().expect("waiters lock");
        if self.subscriptions.fetch_add(1, Ordering::Relaxed).is_multiple_of(PRUNE_EVERY) {
            // Waiters that timed out leave their operation's sender behind.
            map.retain(|_, sender| sender.receiver_count() > 0);
        }
        // One slot: a waiter wants "it changed", not every version; one that
        // missed a version hears `Lagged` and re-reads, which is the same.
        // (Eight slots cost ≈ 280 bytes more per watched operation.)
        map.entry(id).or_insert_with(|| broadcast::channel(1).0).subscribe()
    }

    /// Wakes the waiters of one operation.
    fn wake(&self, change: &Change) {
        let mut map = self.by_operation.lock().expect("waiters lock");
        if let Some(sender) = map.get(&change.id)
            && sender.send(change.version).is_err()
        {
            map.remove(&change.id); // nobody listens any more
        }
    }

    /// Wakes everyone (after the feed lagged and changes may be unknown).
    fn wake_all(&self) {
        self.by_operation.lock().expect("waiters lock").retain(|_, sender| sender.send(RESYNC).is_ok());
    }

    /// Dispatches the node's change feed until it closes.
    pub async fn run(&self, mut feed: broadcast::Receiver<Change>) {
        loop {
            match feed.recv().await {
                Ok(change) => self.wake(&change),
                Err(RecvError::Lagged(_)) => self.wake_all(),
                Err(RecvError::Closed) => return,
            }
        }
    }

    /// How many operations have waiters (for tests and metrics).
    pub fn watched(&self) -> usize {
        self.by_operation.lock().expect("waiters lock").values().filter(|s| s.receiver_count() > 0).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Scope;

    fn change(id: OperationId, version: i64) -> Change {
        Change { seq: version, id, scope: Scope::parse("projects/waiters").unwrap(), version }
    }

    #[test]
    fn wakes_only_the_waiters_of_the_operation_that_changed() {
        let waiters = Waiters::default();
        let (a, b) = (OperationId::from_uuid(uuid::Uuid::now_v7()), OperationId::from_uuid(uuid::Uuid::now_v7()));
        let mut on_a = waiters.subscribe(a);
        let mut on_b = waiters.subscribe(b);
        waiters.wake(&change(a, 2));
        assert_eq!(on_a.try_recv(), Ok(2));
        assert!(on_b.try_recv().is_err(), "b's waiter was not woken");
        waiters.wake_all();
        assert_eq!(on_b.try_recv(), Ok(RESYNC));
        drop((on_a, on_b));
        waiters.wake(&change(a, 3));
        assert_eq!(waiters.watched(), 0);
    }
}
