//! A short-lived cache of key lookups. A busy client presents the same key
//! many times a second, and its lookup was one of the two store reads of
//! every status GET. An entry lives `TTL`, which bounds how late a
//! revocation made through any node takes effect: within a second.
//! Process-wide, like the metrics recorder; keyed by the secret's hash.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::model::ApiKey;
use crate::store::{Store, StoreError};

/// How long a lookup is reused.
pub const TTL: Duration = Duration::from_secs(1);
/// Entries kept at most (a flood of made-up keys empties it, never grows it).
const MAX_ENTRIES: usize = 10_000;

type Entries = HashMap<String, (Instant, Option<Arc<ApiKey>>)>;
static ENTRIES: Mutex<Option<Entries>> = Mutex::new(None);

/// The key whose secret hashes to `hash` (or none), at most `TTL` old;
/// shared, since every request with the key reads the same one.
pub async fn find_key(store: &dyn Store, hash: &str) -> Result<Option<Arc<ApiKey>>, StoreError> {
    if let Some((at, key)) = ENTRIES.lock().expect("key cache lock").as_ref().and_then(|e| e.get(hash).cloned())
        && at.elapsed() < TTL
    {
        return Ok(key);
    }
    let key = store.find_key_by_hash(hash).await?.map(Arc::new);
    let mut entries = ENTRIES.lock().expect("key cache lock");
    let entries = entries.get_or_insert_with(HashMap::new);
    if entries.len() >= MAX_ENTRIES {
        entries.retain(|_, (at, _)| at.elapsed() < TTL);
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
    }
    entries.insert(hash.to_owned(), (Instant::now(), key.clone()));
    Ok(key)
}
