//! Hot operations: the newest committed version of recently written or read
//! operations, in memory, so a status poll — most of the traffic — is
//! answered without a hop to the blocking pool and a SQLite read.
//!
//! Exact, not eventually consistent: this process is the file's only writer
//! (one writer thread), and that thread puts every version it commits here
//! *before* it answers the write, so a read that starts after a 2xx never
//! sees an older version. Readers that missed put what they fetched only if
//! it is newer than what is here and no purge ran meanwhile (`generation`),
//! so a slow reader cannot bring back an older version or a purged operation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::model::{Operation, OperationId};

/// Operations kept at most: a few MiB, far more than the operations being
/// polled at any one time on a node. When full, an arbitrary entry (by hash
/// order: effectively random) makes room.
pub const CAPACITY: usize = 16_384;

/// The cache; one per store.
#[derive(Default)]
pub struct HotOperations {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<OperationId, Arc<Operation>>,
    /// Bumped whenever entries may have been deleted from the database.
    generation: u64,
}

impl HotOperations {
    /// The newest version known, if the operation is hot.
    pub fn get(&self, id: OperationId) -> Option<Arc<Operation>> {
        self.lock().entries.get(&id).cloned()
    }

    /// Where the cache stands before a reader goes to the database.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// The writer committed `op` (created or changed).
    pub fn committed(&self, op: &Operation) {
        self.lock().put(Arc::new(op.clone()));
    }

    /// A reader fetched `op` after seeing `generation`.
    pub fn fetched(&self, op: Arc<Operation>, generation: u64) {
        let mut inner = self.lock();
        if inner.generation == generation {
            inner.put(op);
        }
    }

    /// Operations were deleted (retention purge): forget everything, and
    /// every read in flight since, rather than track which ones.
    pub fn forget_all(&self) {
        let mut inner = self.lock();
        inner.entries.clear();
        inner.generation += 1;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("hot operations lock")
    }
}

impl Inner {
    /// Keeps `op` unless a version at least as new is here.
    fn put(&mut self, op: Arc<Operation>) {
        if let Some(known) = self.entries.get(&op.id) {
            if known.version < op.version {
                self.entries.insert(op.id, op);
            }
            return;
        }
        if self.entries.len() >= CAPACITY
            && let Some(evicted) = self.entries.keys().next().copied()
        {
            self.entries.remove(&evicted);
        }
        self.entries.insert(op.id, op);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::contract::sample_operation;

    fn test_operation() -> Operation {
        sample_operation("projects/hot")
    }

    fn version(op: &Operation, version: i64) -> Operation {
        Operation { version, ..op.clone() }
    }

    #[test]
    fn an_older_version_never_replaces_a_newer_one() {
        let hot = HotOperations::default();
        let op = test_operation();
        hot.committed(&version(&op, 2));
        hot.fetched(Arc::new(version(&op, 1)), hot.generation());
        hot.committed(&version(&op, 1));
        assert_eq!(hot.get(op.id).unwrap().version, 2);
        hot.committed(&version(&op, 3));
        assert_eq!(hot.get(op.id).unwrap().version, 3);
    }

    #[test]
    fn a_read_that_began_before_a_purge_is_not_kept() {
        let hot = HotOperations::default();
        let op = test_operation();
        hot.committed(&op);
        let seen = hot.generation();
        hot.forget_all();
        assert!(hot.get(op.id).is_none());
        hot.fetched(Arc::new(op.clone()), seen);
        assert!(hot.get(op.id).is_none(), "the purged operation came back");
        hot.fetched(Arc::new(op.clone()), hot.generation());
        assert!(hot.get(op.id).is_some());
    }

    #[test]
    fn it_stays_within_its_capacity() {
        let hot = HotOperations::default();
        let op = test_operation();
        for _ in 0..CAPACITY + 10 {
            let id = OperationId::from_uuid(uuid::Uuid::new_v4());
            hot.committed(&Operation { id, ..op.clone() });
        }
        assert_eq!(hot.lock().entries.len(), CAPACITY);
    }
}
