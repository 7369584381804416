//! Hot operations: the newest committed version of recently written or read
//! operations, in memory, so a status poll — most of the traffic — is
//! answered without a trip to the database.
//!
//! On SQLite it is exact: this process is the file's only writer, and the
//! writer puts every version it commits here *before* it answers the write.
//!
//! On PostgreSQL other nodes write too, and their changes arrive through
//! the change feed (`changed`), a few milliseconds after they commit. What a
//! node promises there:
//! - its own writes are here before it answers them (read-your-writes);
//! - it never serves a version older than one it served (monotonic reads):
//!   a version only ever replaces an older one;
//! - a change committed elsewhere is served once its notification arrives;
//!   a notification that never comes (the writing node died between its
//!   commit and its notification) is covered by `max_age`, after which an
//!   entry is read again;
//! - while the feed is down the cache serves nothing and keeps nothing
//!   (`set_live(false)`); it starts empty once the feed is back.
//!
//! Readers that missed put what they fetched only if nothing that could make
//! it stale happened meanwhile (`generation`: a purge, a change from another
//! node, the feed dropping), so a slow reader cannot bring back an older
//! version or a purged operation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::model::{Operation, OperationId};

/// Operations kept at most: a few MiB, far more than the operations being
/// polled at any one time on a node. When full, an arbitrary entry (by hash
/// order: effectively random) makes room.
pub const CAPACITY: usize = 16_384;

/// The cache; one per store.
pub struct HotOperations {
    inner: Mutex<Inner>,
    /// How long an entry is served before it is read again (`None`: forever).
    max_age: Option<Duration>,
}

impl Default for HotOperations {
    fn default() -> HotOperations {
        HotOperations { inner: Mutex::new(Inner { live: true, ..Inner::default() }), max_age: None }
    }
}

#[derive(Default)]
struct Inner {
    entries: HashMap<OperationId, (Arc<Operation>, Instant)>,
    /// Bumped whenever entries may have gone stale behind a reader's back.
    generation: u64,
    /// Whether it serves and keeps anything (the feed is up).
    live: bool,
}

impl HotOperations {
    /// A cache of a shared database: entries are served for `max_age` at
    /// most, and nothing until `set_live(true)`.
    pub fn shared(max_age: Duration) -> HotOperations {
        HotOperations { inner: Mutex::new(Inner::default()), max_age: Some(max_age) }
    }

    /// The newest version known, if the operation is hot.
    pub fn get(&self, id: OperationId) -> Option<Arc<Operation>> {
        let inner = self.lock();
        let (op, since) = inner.entries.get(&id)?;
        match self.max_age {
            Some(max_age) if since.elapsed() > max_age => None,
            _ => Some(op.clone()),
        }
    }

    /// Where the cache stands before a reader goes to the database.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// This node committed `op` (created or changed).
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

    /// Another node committed `version` of `id`: an older entry goes, and
    /// so does whatever a reader in flight fetched.
    pub fn changed(&self, id: OperationId, version: i64) {
        let mut inner = self.lock();
        if inner.entries.get(&id).is_some_and(|(known, _)| known.version >= version) {
            return;
        }
        inner.entries.remove(&id);
        inner.generation += 1;
    }

    /// Operations were deleted (retention purge): forget everything, and
    /// every read in flight since, rather than track which ones.
    pub fn forget_all(&self) {
        let mut inner = self.lock();
        inner.entries.clear();
        inner.generation += 1;
    }

    /// The change feed is up (`true`) or down (`false`): either way
    /// everything known so far may have missed changes, and is forgotten.
    pub fn set_live(&self, live: bool) {
        let mut inner = self.lock();
        inner.entries.clear();
        inner.generation += 1;
        inner.live = live;
    }

    /// Whether it serves anything (on PostgreSQL: the change feed is up).
    #[cfg(test)]
    pub fn is_live(&self) -> bool {
        self.lock().live
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("hot operations lock")
    }
}

impl Inner {
    /// Keeps `op` unless a version at least as new is here (or the cache is
    /// not live).
    fn put(&mut self, op: Arc<Operation>) {
        if !self.live {
            return;
        }
        let now = Instant::now();
        if let Some((known, since)) = self.entries.get_mut(&op.id) {
            // A newer version replaces the entry; the same one, read or
            // written again just now, makes it fresh again.
            if known.version <= op.version {
                *known = op;
                *since = now;
            }
            return;
        }
        if self.entries.len() >= CAPACITY
            && let Some(evicted) = self.entries.keys().next().copied()
        {
            self.entries.remove(&evicted);
        }
        self.entries.insert(op.id, (op, now));
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

    #[test]
    fn a_change_from_another_node_evicts_older_versions_and_reads_in_flight() {
        let hot = HotOperations::shared(Duration::from_secs(60));
        hot.set_live(true);
        let op = test_operation();
        hot.committed(&version(&op, 2));
        hot.changed(op.id, 2);
        assert_eq!(hot.get(op.id).unwrap().version, 2, "its own change, heard back");
        let in_flight = hot.generation();
        hot.changed(op.id, 3);
        assert!(hot.get(op.id).is_none());
        hot.fetched(Arc::new(version(&op, 2)), in_flight);
        assert!(hot.get(op.id).is_none(), "a read that began before the change is not kept");
        hot.fetched(Arc::new(version(&op, 3)), hot.generation());
        assert_eq!(hot.get(op.id).unwrap().version, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_shared_cache_serves_nothing_while_its_feed_is_down_and_nothing_past_its_age() {
        let hot = HotOperations::shared(Duration::from_millis(50));
        let op = test_operation();
        hot.committed(&op);
        assert!(hot.get(op.id).is_none(), "not live before the feed is up");
        hot.set_live(true);
        hot.committed(&op);
        assert!(hot.get(op.id).is_some());
        hot.set_live(false);
        assert!(hot.get(op.id).is_none(), "the feed dropped: forgotten");
        hot.committed(&op);
        assert!(hot.get(op.id).is_none(), "nothing kept while the feed is down");
        hot.set_live(true);
        hot.committed(&op);
        tokio::time::advance(Duration::from_millis(60)).await;
        assert!(hot.get(op.id).is_none(), "past its age, read again");
    }
}
