//! This node's short-lived memory of key lookups. A busy client presents
//! the same key many times a second, and on PostgreSQL its lookup is a
//! round trip. An entry lives `TTL`, which bounds how late a revocation made
//! elsewhere (another node, `longrun key revoke`) takes effect here; this
//! node's own key writes forget every entry at once. SQLite needs none: its
//! lookup is a local read, so a revocation counts from the next request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::model::ApiKey;

/// How long a lookup is reused.
pub const TTL: Duration = Duration::from_secs(1);
/// Entries kept at most (a flood of made-up keys empties it, never grows it).
const MAX_ENTRIES: usize = 10_000;

/// Lookups by secret hash, each with when it was made (`None`: no such key).
#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<String, (Instant, Option<ApiKey>)>>,
}

impl KeyCache {
    /// The lookup of `hash` made less than `TTL` ago, if there is one.
    pub fn get(&self, hash: &str) -> Option<Option<ApiKey>> {
        let entries = self.entries.lock().expect("key cache lock");
        entries.get(hash).filter(|(at, _)| at.elapsed() < TTL).map(|(_, key)| key.clone())
    }

    /// Remembers the lookup of `hash`.
    pub fn put(&self, hash: &str, key: Option<ApiKey>) {
        let mut entries = self.entries.lock().expect("key cache lock");
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (at, _)| at.elapsed() < TTL);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(hash.to_owned(), (Instant::now(), key));
    }

    /// Forgets every lookup (after this node changed a key).
    pub fn clear(&self) {
        self.entries.lock().expect("key cache lock").clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cleared_cache_looks_keys_up_again() {
        let cache = KeyCache::default();
        cache.put("h", None);
        assert_eq!(cache.get("h").map(|k| k.is_none()), Some(true), "an unknown key is remembered as unknown");
        cache.clear();
        assert!(cache.get("h").is_none());
    }
}
