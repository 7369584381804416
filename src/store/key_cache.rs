//! A node's short-lived memory of key lookups: a busy client presents the
//! same key many times a second, and its lookup would otherwise be most of
//! a cached status GET's own work. An entry is reused while it is younger
//! than `TTL` and was read at the store's current `epoch`:
//! - SQLite passes its file's data version, which moves with every commit
//!   of any connection, so a `longrun key revoke` from another process
//!   counts from the next request;
//! - PostgreSQL passes 0 and relies on `TTL`, which bounds how late a
//!   revocation made elsewhere (another node, the CLI) takes effect; this
//!   node's own key writes forget every entry at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::model::ApiKey;

/// How long a lookup is reused at most.
pub const TTL: Duration = Duration::from_secs(1);
/// Entries kept at most (a flood of made-up keys empties it, never grows it).
const MAX_ENTRIES: usize = 10_000;

/// One remembered lookup.
struct Entry {
    at: Instant,
    epoch: i64,
    key: Option<ApiKey>,
}

/// Lookups by secret hash (`None`: no such key).
#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<String, Entry>>,
}

impl KeyCache {
    /// The lookup of `hash` made at `epoch` less than `TTL` ago, if any.
    pub fn get(&self, hash: &str, epoch: i64) -> Option<Option<ApiKey>> {
        let entries = self.entries.lock().expect("key cache lock");
        let entry = entries.get(hash).filter(|e| e.epoch == epoch && e.at.elapsed() < TTL)?;
        Some(entry.key.clone())
    }

    /// Remembers the lookup of `hash`, made at `epoch`.
    pub fn put(&self, hash: &str, key: Option<ApiKey>, epoch: i64) {
        let mut entries = self.entries.lock().expect("key cache lock");
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, e| e.at.elapsed() < TTL);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(hash.to_owned(), Entry { at: Instant::now(), epoch, key });
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
    fn a_lookup_is_reused_only_at_its_epoch_and_until_cleared() {
        let cache = KeyCache::default();
        cache.put("h", None, 7);
        assert_eq!(cache.get("h", 7).map(|k| k.is_none()), Some(true), "an unknown key is remembered as unknown");
        assert!(cache.get("h", 8).is_none(), "the store changed since");
        cache.clear();
        assert!(cache.get("h", 7).is_none());
    }
}
