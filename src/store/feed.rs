//! The change feed: every committed change to an operation, announced to
//! whoever listens (long-poll, SSE, webhooks). SQLite announces in-process;
//! PostgreSQL announces through `LISTEN/NOTIFY`, so a change committed on one
//! node reaches listeners on every node.

use tokio::sync::broadcast;

use crate::model::{OperationId, Scope};

/// How many changes a slow listener may fall behind before it is told it
/// lagged (it then re-reads what it watches instead of trusting the feed).
const CAPACITY: usize = 4096;

/// One committed change: enough to decide whether to re-read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Its position in the change log (the SSE event id) where the store
    /// knows it at commit (SQLite); 0 on PostgreSQL, which places changes
    /// after they commit. Either way the feed only says "something
    /// changed": resumable readers take positions from `changes_since`.
    pub seq: i64,
    /// The operation that changed.
    pub id: OperationId,
    /// Its scope.
    pub scope: Scope,
    /// Its version after the change.
    pub version: i64,
}

/// Something that announces committed changes.
pub trait ChangeFeed: Send + Sync {
    /// A receiver of every change committed from now on.
    fn subscribe(&self) -> broadcast::Receiver<Change>;
}

/// The in-process feed: a broadcast channel the store publishes to after
/// each commit. Also the local fan-out of the PostgreSQL listener.
#[derive(Debug, Clone)]
pub struct LocalFeed {
    sender: broadcast::Sender<Change>,
}

impl Default for LocalFeed {
    fn default() -> LocalFeed {
        LocalFeed { sender: broadcast::channel(CAPACITY).0 }
    }
}

impl LocalFeed {
    /// Announces a committed change (no listener is not an error).
    pub fn publish(&self, change: Change) {
        let _ = self.sender.send(change);
    }
}

impl ChangeFeed for LocalFeed {
    fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.sender.subscribe()
    }
}
