//! Persistence behind one trait (SPEC §6). Handlers and the use-cases see only
//! `dyn Store`; each backend lives in its own module and maps its driver's
//! errors to `StoreError`, so nothing above this layer matches on SQL errors.
//!
//! Contract shared by every backend: a method that returns `Ok` for a write
//! has committed it durably.

pub mod feed;
mod hot;
mod key_cache;
pub mod postgres;
pub mod sqlite;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use self::feed::{Change, ChangeFeed};
use crate::model::{ApiKey, Delivery, Kind, Operation, OperationId, Scope, State, Timestamp, Webhook};

/// A backend-neutral storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An operation (or key) with this id already exists.
    #[error("already exists")]
    AlreadyExists,
    /// The record changed since it was read (compare-and-swap lost).
    #[error("version mismatch")]
    VersionMismatch,
    /// The record to update does not exist.
    #[error("not found")]
    NotFound,
    /// The backend cannot take writes right now (locked, away): retry later.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The disk under the store is full: writes fail until space returns;
    /// reads still work.
    #[error("the disk under the store is full")]
    Full,
    /// Anything else; a bug or a broken backend.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Which operations a list returns, and where a page starts.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this scope (`None`: every scope, for `*` keys).
    pub scope: Option<Scope>,
    /// Only this state.
    pub state: Option<State>,
    /// Only this kind.
    pub kind: Option<Kind>,
    /// Continue after this (created_at, id) position, newest first.
    pub after: Option<(Timestamp, OperationId)>,
    /// Only those created at or after this.
    pub created_from: Option<Timestamp>,
    /// Only those created before this.
    pub created_before: Option<Timestamp>,
    /// At most this many.
    pub limit: u32,
}

/// How long the change log keeps a change (resumable event streams can
/// resume within this long).
pub const CHANGE_LOG_KEEP: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// A response kept for a repeatable request, replayed to its repeats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers worth replaying (not the per-response request id or date).
    pub headers: Vec<(String, String)>,
    /// The body, as sent.
    pub body: String,
}

/// What a repeatable request finds when it begins (OASIS Repeatable Requests).
#[derive(Debug, Clone, PartialEq)]
pub enum RepeatBegin {
    /// First time (or the first attempt was abandoned): go ahead.
    Started,
    /// The first attempt is still being processed.
    InFlight {
        /// Fingerprint of the first attempt's request.
        fingerprint: String,
    },
    /// The first attempt finished: replay its response.
    Replay {
        /// Fingerprint of the first attempt's request.
        fingerprint: String,
        /// Its response.
        response: StoredResponse,
    },
}

/// Everything the service needs from storage.
/// The webhook outbox: registrations, the dispatcher's cursor over the
/// change log, and the deliveries it queues. Every `Store` is one.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Registers a webhook.
    async fn create_webhook(&self, hook: &Webhook) -> Result<(), StoreError>;
    /// Every webhook.
    async fn list_webhooks(&self) -> Result<Vec<Webhook>, StoreError>;
    /// Removes a webhook and its deliveries, in one transaction; whether
    /// there was one.
    async fn delete_webhook(&self, id: &str) -> Result<bool, StoreError>;
    /// How far the webhook dispatcher has read the change log.
    async fn webhook_cursor(&self) -> Result<i64, StoreError>;
    /// Queues `deliveries` and moves the cursor from `from` to `to`, in one
    /// transaction; false (nothing written) if another node moved it first.
    async fn enqueue_deliveries(&self, from: i64, to: i64, deliveries: &[Delivery]) -> Result<bool, StoreError>;
    /// Pending deliveries due at `now`, oldest first.
    async fn due_deliveries(&self, now: Timestamp, limit: u32) -> Result<Vec<Delivery>, StoreError>;
    /// When the next pending delivery is due (`None`: none is pending).
    async fn next_delivery_due(&self) -> Result<Option<Timestamp>, StoreError>;
    /// Takes a due delivery for one attempt by moving its `next_at` from
    /// `seen` to `until`; false if another node took it first.
    async fn claim_delivery(&self, id: &str, seen: Timestamp, until: Timestamp) -> Result<bool, StoreError>;
    /// Records an attempt's outcome.
    async fn update_delivery(&self, delivery: &Delivery) -> Result<(), StoreError>;
    /// A webhook's deliveries, newest first.
    async fn list_deliveries(&self, webhook_id: &str, limit: u32) -> Result<Vec<Delivery>, StoreError>;
}

#[async_trait]
pub trait Store: WebhookStore + Send + Sync + 'static {
    /// Inserts a new operation; `AlreadyExists` if its id is taken.
    async fn create_operation(&self, op: &Operation) -> Result<(), StoreError>;
    /// Reads one operation by id, whatever its scope (callers filter).
    /// Shared, not owned: a status read only renders it, and a store that
    /// keeps hot operations in memory hands out the one it holds.
    async fn get_operation(&self, id: OperationId) -> Result<Option<Arc<Operation>>, StoreError>;
    /// Replaces an operation if its stored version is still `expected_version`.
    async fn update_operation(&self, op: &Operation, expected_version: i64) -> Result<(), StoreError>;
    /// Lists operations newest first (created_at, then id, descending).
    async fn list_operations(&self, filter: &ListFilter) -> Result<Vec<Operation>, StoreError>;
    /// Deletes up to `limit` terminal operations whose retention ended
    /// before `now`, leaving a tombstone of each until `forget_at`, and
    /// forgets tombstones older than `now`; returns how many operations went.
    async fn purge_expired(&self, now: Timestamp, forget_at: Timestamp, limit: u32) -> Result<u64, StoreError>;
    /// Deletes the finished operation `id` now (Google's DeleteOperation),
    /// leaving the tombstone a purge leaves, until `forget_at`. `NotFound`
    /// when there is no such operation or it is not finished.
    async fn delete_finished(&self, id: OperationId, forget_at: Timestamp) -> Result<(), StoreError>;
    /// The scope and kind of a purged operation, while its tombstone lasts.
    async fn find_tombstone(&self, id: OperationId) -> Result<Option<(Scope, Kind)>, StoreError>;
    /// Operations whose next script step is due at `now`, oldest due first.
    async fn due_scripts(&self, now: Timestamp, limit: u32) -> Result<Vec<Operation>, StoreError>;
    /// The oldest NotStarted, unscripted operations of `kinds` (in `scope`
    /// if given) that a worker could claim, oldest first.
    async fn claimable(&self, kinds: &[Kind], scope: Option<&Scope>, limit: u32) -> Result<Vec<Operation>, StoreError>;
    /// Running operations whose lease lapsed before `now`.
    async fn expired_leases(&self, now: Timestamp, limit: u32) -> Result<Vec<Operation>, StoreError>;
    /// When the next script step is due or the next lease of a Running
    /// operation lapses, whichever is first (`None`: neither is pending):
    /// background work sleeps until then instead of polling.
    async fn next_work_due(&self) -> Result<Option<Timestamp>, StoreError>;
    /// Records the start of a repeatable request `key`, or reports what an
    /// earlier attempt left. A pending attempt older than `stale_before` is
    /// taken over (its node died). Records last until `expires_at`.
    async fn begin_repeatable(
        &self,
        key: &str,
        fingerprint: &str,
        now: Timestamp,
        stale_before: Timestamp,
        expires_at: Timestamp,
    ) -> Result<RepeatBegin, StoreError>;
    /// Keeps the response of a repeatable request for its repeats.
    async fn finish_repeatable(&self, key: &str, response: &StoredResponse) -> Result<(), StoreError>;
    /// Forgets a repeatable request that failed in a way worth retrying.
    async fn abandon_repeatable(&self, key: &str) -> Result<(), StoreError>;
    /// Stores a new API key.
    async fn create_key(&self, key: &ApiKey) -> Result<(), StoreError>;
    /// Finds a key by the hex SHA-256 of its secret.
    async fn find_key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError>;
    /// Every key, newest first.
    async fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError>;
    /// Marks a key revoked at `at`; `NotFound` if no key has this id.
    /// (A later `at` than one already set is ignored: revocations only come sooner.)
    async fn revoke_key(&self, id: &str, at: Timestamp) -> Result<(), StoreError>;
    /// Logged changes after position `after` (in `scope`, if given), oldest
    /// first. The purge forgets changes older than `CHANGE_LOG_KEEP`.
    async fn changes_since(&self, scope: Option<&Scope>, after: i64, limit: u32) -> Result<Vec<Change>, StoreError>;
    /// The newest change-log position (0 when empty).
    async fn latest_change_seq(&self) -> Result<i64, StoreError>;
    /// How many operations are in each (state, kind), from counts the
    /// store keeps as it writes (never a scan of the operations).
    async fn count_operations(&self) -> Result<Vec<OperationCount>, StoreError>;
    /// Records when keys were last used (a batch from `auth::usage`); an
    /// older time than the stored one is ignored.
    async fn touch_keys(&self, used: &[(String, Timestamp)]) -> Result<(), StoreError>;
    /// When each key was last used, for the keys that ever were.
    async fn keys_last_used(&self) -> Result<Vec<(String, Timestamp)>, StoreError>;
    /// How many worker leases are held now (operations with a lease).
    async fn count_leases_held(&self) -> Result<i64, StoreError>;
    /// The feed of committed changes, from every node sharing this store.
    fn feed(&self) -> Arc<dyn ChangeFeed>;
}

/// Interprets the row a `begin_repeatable` found (fingerprint, response JSON).
pub(crate) fn repeat_state(found: Option<(String, Option<String>)>) -> Result<RepeatBegin, StoreError> {
    match found {
        // Gone between the insert attempt and the read (abandoned): retry.
        None => Err(StoreError::Unavailable("a repeatable request changed under us; retry".into())),
        Some((fingerprint, None)) => Ok(RepeatBegin::InFlight { fingerprint }),
        Some((fingerprint, Some(json))) => {
            let response = serde_json::from_str(&json).map_err(|e| StoreError::Other(anyhow::Error::new(e)))?;
            Ok(RepeatBegin::Replay { fingerprint, response })
        }
    }
}

/// Parses a logged change.
pub(crate) fn decode_change(seq: i64, id: &str, scope: &str, version: i64) -> Result<Change, StoreError> {
    let id = OperationId::parse(id).ok_or_else(|| StoreError::Other(anyhow::anyhow!("stored id {id}")))?;
    let scope = Scope::parse(scope).map_err(|e| StoreError::Other(anyhow::anyhow!("stored scope: {e}")))?;
    Ok(Change { seq, id, scope, version })
}

/// Parses a stored scope and kind (tombstones keep them as text).
pub(crate) fn decode_scope_kind(scope: &str, kind: &str) -> Result<(Scope, Kind), StoreError> {
    let scope = Scope::parse(scope).map_err(|e| StoreError::Other(anyhow::anyhow!("stored scope: {e}")))?;
    let kind = Kind::parse(kind).map_err(|e| StoreError::Other(anyhow::anyhow!("stored kind: {e}")))?;
    Ok((scope, kind))
}

/// Opens the default embedded store: `longrun.db` under `data_dir`.
pub fn open_data_dir(data_dir: &Path) -> anyhow::Result<Arc<dyn Store>> {
    Ok(Arc::new(sqlite::SqliteStore::open_dir(data_dir)?))
}

/// Records how long one store call took (`longrun_store_seconds`), by
/// backend and access (`read`, `write`; PostgreSQL calls are one kind).
pub(crate) fn observe(backend: &'static str, access: &'static str, started: std::time::Instant) {
    let histogram = crate::telemetry::metrics::recorder().store_call(backend, access);
    histogram.record(started.elapsed().as_secs_f64());
}

/// Operations in one state of one kind.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationCount {
    /// PascalCase state.
    pub state: String,
    /// Kind.
    pub kind: String,
    /// How many.
    pub count: i64,
}

/// Opens the store a `--store` value names: a `postgres://` (or
/// `postgresql://`) URL, or `sqlite:` followed by a data directory. With no
/// value, the SQLite file under `data_dir`.
pub async fn open(store: Option<&str>, data_dir: &Path, pool_size: usize) -> anyhow::Result<Arc<dyn Store>> {
    match store {
        None => open_data_dir(data_dir),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Arc::new(postgres::PostgresStore::connect(url, pool_size).await?))
        }
        Some(url) if url.starts_with("sqlite:") => open_data_dir(Path::new(url.trim_start_matches("sqlite:"))),
        Some(other) => anyhow::bail!(
            "unknown store '{other}': use postgres://user@host/db or sqlite:<data dir> (or leave it unset for SQLite in --data-dir)"
        ),
    }
}

#[cfg(test)]
pub mod contract;
