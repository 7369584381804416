//! Connections shared by concurrent point reads. tokio-postgres pipelines
//! the queries issued concurrently on one client: they leave in one write
//! and their answers come back in one read. A pooled connection serves one
//! call at a time, so every status read paid its own send and receive on
//! both sides; sharing a few connections among all status reads cuts those
//! syscalls, which were the largest single cost of a PostgreSQL status GET.
//!
//! Only single-statement reads belong here: a transaction, or anything that
//! must not wait behind other queries, takes a pooled connection of its own.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use deadpool_postgres::{Object, Pool};

use crate::store::StoreError;

/// A few pooled connections, held for sharing and replaced when they close.
pub struct Shared {
    slots: Vec<Mutex<Option<Arc<Object>>>>,
    next: AtomicUsize,
}

impl Shared {
    /// `count` slots, filled on first use.
    pub fn new(count: usize) -> Shared {
        Shared { slots: (0..count.max(1)).map(|_| Mutex::new(None)).collect(), next: AtomicUsize::new(0) }
    }

    /// The next shared connection in turn; a closed one is given back to
    /// `pool` (which discards it) and replaced.
    pub async fn client(&self, pool: &Pool) -> Result<Arc<Object>, StoreError> {
        let slot = &self.slots[self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len()];
        if let Some(client) = slot.lock().expect("shared connection lock").as_ref().filter(|c| !c.is_closed()) {
            return Ok(client.clone());
        }
        let fresh = Arc::new(pool.get().await.map_err(|e| StoreError::Unavailable(format!("PostgreSQL: {e}")))?);
        *slot.lock().expect("shared connection lock") = Some(fresh.clone());
        Ok(fresh)
    }
}
