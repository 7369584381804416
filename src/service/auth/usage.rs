//! When keys were last used, without a write per request: authentication
//! notes the time in memory, and the server flushes the latest time of each
//! key to the store in one batch now and then (`flush`), and when it stops.
//! Process-wide, like the metrics recorder: one per node.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::model::Timestamp;
use crate::store::{Store, StoreError};

static SEEN: Mutex<Option<HashMap<String, Timestamp>>> = Mutex::new(None);

/// Notes that key `id` authenticated a request at `at`.
pub fn note(id: &str, at: Timestamp) {
    let mut seen = SEEN.lock().expect("key usage lock");
    let seen = seen.get_or_insert_with(HashMap::new);
    match seen.get_mut(id) {
        Some(last) => *last = (*last).max(at),
        None => {
            seen.insert(id.to_owned(), at);
        }
    }
}

/// Writes what was noted since the last flush; returns how many keys.
pub async fn flush(store: &dyn Store) -> Result<usize, StoreError> {
    let used: Vec<(String, Timestamp)> =
        SEEN.lock().expect("key usage lock").take().unwrap_or_default().into_iter().collect();
    if used.is_empty() {
        return Ok(0);
    }
    if let Err(e) = store.touch_keys(&used).await {
        // Keep them for the next flush rather than lose them.
        for (id, at) in &used {
            note(id, *at);
        }
        return Err(e);
    }
    Ok(used.len())
}
