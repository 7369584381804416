//! When keys were last used, without a write per request: authentication
//! notes the time in this node's memory, and the node flushes the latest
//! time of each key to the store in one batch now and then (`flush`), and
//! when it stops.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::model::Timestamp;
use crate::store::{Store, StoreError};

/// A node's key uses since its last flush: key id → latest use.
#[derive(Debug, Default)]
pub struct KeyUsage {
    seen: Mutex<HashMap<String, Timestamp>>,
}

impl KeyUsage {
    /// Notes that key `id` authenticated a request at `at`.
    pub fn note(&self, id: &str, at: Timestamp) {
        let mut seen = self.seen.lock().expect("key usage lock");
        match seen.get_mut(id) {
            Some(last) => *last = (*last).max(at),
            None => {
                seen.insert(id.to_owned(), at);
            }
        }
    }

    /// Writes what was noted since the last flush; returns how many keys.
    pub async fn flush(&self, store: &dyn Store) -> Result<usize, StoreError> {
        let used: Vec<(String, Timestamp)> =
            std::mem::take(&mut *self.seen.lock().expect("key usage lock")).into_iter().collect();
        if used.is_empty() {
            return Ok(0);
        }
        if let Err(e) = store.touch_keys(&used).await {
            // Keep them for the next flush rather than lose them.
            for (id, at) in &used {
                self.note(id, *at);
            }
            return Err(e);
        }
        Ok(used.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_keeps_its_latest_use() {
        let usage = KeyUsage::default();
        usage.note("k", Timestamp::from_unix_nanos(2));
        usage.note("k", Timestamp::from_unix_nanos(1));
        assert_eq!(usage.seen.lock().unwrap()["k"], Timestamp::from_unix_nanos(2));
    }
}
