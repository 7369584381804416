//! Persistence behind one trait (SPEC §6). Handlers and `ops` see only
//! `dyn Store`; each backend lives in its own module and maps its driver's
//! errors to `StoreError`, so nothing above this layer matches on SQL errors.
//!
//! Contract shared by every backend: a method that returns `Ok` for a write
//! has committed it durably.

pub mod feed;
pub mod postgres;
pub mod sqlite;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;

use self::feed::ChangeFeed;
use crate::model::{ApiKey, Kind, Operation, OperationId, Scope, State, Timestamp};

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
    /// The backend cannot take writes right now (disk full, locked): retry later.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
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
    /// At most this many.
    pub limit: u32,
}

/// Everything the service needs from storage.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Inserts a new operation; `AlreadyExists` if its id is taken.
    async fn create_operation(&self, op: &Operation) -> Result<(), StoreError>;
    /// Reads one operation by id, whatever its scope (callers filter).
    async fn get_operation(&self, id: OperationId) -> Result<Option<Operation>, StoreError>;
    /// Replaces an operation if its stored version is still `expected_version`.
    async fn update_operation(&self, op: &Operation, expected_version: i64) -> Result<(), StoreError>;
    /// Lists operations newest first (created_at, then id, descending).
    async fn list_operations(&self, filter: &ListFilter) -> Result<Vec<Operation>, StoreError>;
    /// Deletes up to `limit` terminal operations whose retention ended
    /// before `now`, leaving a tombstone of each until `forget_at`, and
    /// forgets tombstones older than `now`; returns how many operations went.
    async fn purge_expired(&self, now: Timestamp, forget_at: Timestamp, limit: u32) -> Result<u64, StoreError>;
    /// The scope and kind of a purged operation, while its tombstone lasts.
    async fn find_tombstone(&self, id: OperationId) -> Result<Option<(Scope, Kind)>, StoreError>;
    /// Operations whose next script step is due at `now`, oldest due first.
    async fn due_scripts(&self, now: Timestamp, limit: u32) -> Result<Vec<Operation>, StoreError>;
    /// Stores a new API key.
    async fn create_key(&self, key: &ApiKey) -> Result<(), StoreError>;
    /// Finds a key by the hex SHA-256 of its secret.
    async fn find_key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError>;
    /// Every key, newest first.
    async fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError>;
    /// The feed of committed changes, from every node sharing this store.
    fn feed(&self) -> Arc<dyn ChangeFeed>;
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
