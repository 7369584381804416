//! The embedded backend: one SQLite file in WAL mode.
//!
//! Writes go to the single writer thread (`writer`), which commits them in
//! groups with `synchronous=FULL`, so an `Ok` means the write is on disk.
//! Reads run in parallel on a small pool of read-only connections inside
//! `spawn_blocking`, so a long SQLite call never blocks the async runtime.
//! The exceptions are lookups by key (a status read that missed the
//! hot-operation cache, a tombstone, an API key): they run in place
//! (`point_read`), because the hop to the blocking pool and back cost more
//! than the lookup itself.

pub mod backup;
mod check;
mod rows;
mod schema;
mod webhooks;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use anyhow::Context;
use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, params};
use tokio::sync::{Semaphore, oneshot};

use self::rows::{KEY_COLUMNS, OPERATION_COLUMNS, key_from_row, operation_from_row};
use self::writer::{Job, Write, map_error};
use super::feed::Change;
use super::feed::{ChangeFeed, LocalFeed};
use super::key_cache::KeyCache;
use super::{
    ListFilter, OperationCount, RepeatBegin, Store, StoreError, StoredResponse, decode_change, decode_scope_kind,
    repeat_state,
};
use crate::model::{ApiKey, Kind, Operation, OperationId, Scope, Timestamp};
use crate::store::hot::HotOperations;

/// The schema version this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = schema::CURRENT_VERSION;

/// Name of the database file inside the data directory.
pub const FILE_NAME: &str = "longrun.db";

/// Most concurrent readers; more would only queue inside SQLite.
const MAX_READERS: usize = 8;

/// How long start-up waits for the integrity check after a crash before it
/// serves with the check still running: a small file is checked (and a
/// damaged one refused) before anything is served; a large one does not
/// keep the service down for the seconds a whole-file read takes.
const CHECK_PATIENCE: std::time::Duration = std::time::Duration::from_millis(300);

/// The SQLite store. Cheap to share: clone the `Arc` it lives in.
pub struct SqliteStore {
    /// `None` only while dropping.
    writer: Option<mpsc::Sender<Job>>,
    /// Returns whether the writer's connection closed cleanly.
    writer_thread: Option<std::thread::JoinHandle<bool>>,
    readers: Arc<ReadPool>,
    feed: LocalFeed,
    hot: Arc<HotOperations>,
    /// The integrity check still running or done since a start that was
    /// not clean (`None` after a clean stop: nothing to check).
    integrity: Option<Arc<check::Background>>,
    /// Recent key lookups, valid while the file's data version holds.
    keys: KeyCache,
    /// The one connection that reads the data version (it is per
    /// connection: each counts the commits made by the others), and its
    /// last reading.
    version_probe: Mutex<VersionProbe>,
}

/// How long a data-version reading is reused: reading it takes a shared
/// lock on the file (a few `fcntl` calls), which cost 15 % of a cached
/// status GET's CPU when every request read it. A key revoked by another
/// process therefore counts from the first request that starts 1 ms after
/// the revocation committed.
const DATA_VERSION_REUSE: std::time::Duration = std::time::Duration::from_millis(1);

#[derive(Default)]
struct VersionProbe {
    connection: Option<Connection>,
    /// The last reading and when it was taken.
    last: Option<(std::time::Instant, i64)>,
}

struct ReadPool {
    /// The database file (readers open it; a clean stop notes it).
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
    /// Connections for reads run in place on a runtime thread (at most one
    /// per runtime thread is in use). They never wait for a lock: a busy
    /// database sends the read to the blocking pool instead.
    in_place: Mutex<Vec<Connection>>,
}

impl SqliteStore {
    /// Opens (creating if needed) `longrun.db` in `dir`, creating `dir` too.
    pub fn open_dir(dir: &Path) -> anyhow::Result<SqliteStore> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create data directory {}", dir.display()))?;
        SqliteStore::open(&dir.join(FILE_NAME))
    }

    /// Opens (creating if needed) the database file at `path`, checks it
    /// (`quick_check`, unless the file is exactly as a clean stop left it;
    /// see `check` for how long start-up waits for it, and what damage
    /// found later does) and migrates it.
    pub fn open(path: &Path) -> anyhow::Result<SqliteStore> {
        SqliteStore::open_with_patience(path, CHECK_PATIENCE)
    }

    /// `open`, waiting at most `patience` for an integrity check.
    fn open_with_patience(path: &Path, patience: std::time::Duration) -> anyhow::Result<SqliteStore> {
        let (conn, integrity) = open_writer(path, patience).map_err(|e| check::refuse_damaged(path, e))?;
        let (sender, jobs) = mpsc::channel();
        let feed = LocalFeed::default();
        let writer_feed = feed.clone();
        let hot = Arc::new(HotOperations::default());
        let writer_hot = hot.clone();
        let writer_thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer::run(conn, jobs, writer_feed, writer_hot))
            .context("cannot start the SQLite writer thread")?;
        Ok(SqliteStore {
            writer: Some(sender),
            writer_thread: Some(writer_thread),
            readers: Arc::new(ReadPool {
                path: path.to_owned(),
                idle: Mutex::new(Vec::new()),
                permits: Arc::new(Semaphore::new(MAX_READERS)),
                in_place: Mutex::new(Vec::new()),
            }),
            feed,
            hot,
            integrity,
            keys: KeyCache::default(),
            version_probe: Mutex::default(),
        })
    }

    /// Fails every call once the background integrity check found damage.
    fn refuse_if_damaged(&self) -> Result<(), StoreError> {
        match self.integrity.as_deref().and_then(check::Background::refusal) {
            Some(refusal) => Err(StoreError::Unavailable(refusal.to_owned())),
            None => Ok(()),
        }
    }

    /// Queues `write` for the writer thread; answers after its COMMIT.
    async fn write(&self, write: Write) -> Result<u64, StoreError> {
        self.refuse_if_damaged()?;
        let started = std::time::Instant::now();
        let (reply, outcome) = oneshot::channel();
        self.writer
            .as_ref()
            .expect("the writer lives as long as the store")
            .send(Job { write, reply })
            .map_err(|_| StoreError::Unavailable("the SQLite writer has stopped".into()))?;
        let outcome = outcome.await.map_err(|_| StoreError::Unavailable("the SQLite writer has stopped".into()))?;
        super::observe("sqlite", "write", started);
        outcome
    }

    /// Runs `query` on a pooled read connection on the blocking thread pool.
    async fn read<T, F>(&self, query: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        self.refuse_if_damaged()?;
        let started = std::time::Instant::now();
        let permit = self.readers.permits.clone().acquire_owned().await.map_err(anyhow::Error::new)?;
        let pool = self.readers.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let conn = pool.take()?;
            let result = query(&conn).map_err(map_error);
            pool.give_back(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Other(anyhow::Error::new(e).context("SQLite read task")))?;
        super::observe("sqlite", "read", started);
        outcome
    }

    /// Runs `query`, a lookup by primary key, right here on the calling
    /// (runtime) thread; falls back to `read` when the database is busy.
    ///
    /// Why in place: a point read of a page-cached file takes microseconds,
    /// while handing it to the blocking pool and waking the task again
    /// took most of an uncached GET's CPU (futex and scheduler, ~40 % in the
    /// profile). Only bounded queries belong here: the thread serves other
    /// requests meanwhile.
    async fn point_read<T, F>(&self, query: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&Connection) -> rusqlite::Result<T> + Send + Clone + 'static,
    {
        self.refuse_if_damaged()?;
        let started = std::time::Instant::now();
        let conn = self.readers.take_in_place()?;
        let outcome = query(&conn);
        self.readers.in_place.lock().expect("pool lock").push(conn);
        match outcome {
            Err(e) if matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseBusy)) => {
                self.read(query).await
            }
            outcome => {
                super::observe("sqlite", "read", started);
                outcome.map_err(map_error)
            }
        }
    }
}

impl SqliteStore {
    /// Forgets every key lookup and the last data-version reading, after
    /// this process changed a key: it counts from the next request.
    fn forget_keys(&self) {
        self.version_probe.lock().expect("probe lock").last = None;
        self.keys.clear();
    }

    /// The file's data version as the probe connection sees it, read at
    /// most `DATA_VERSION_REUSE` ago: it moves whenever any other
    /// connection (this process's writer, a `longrun key` command) commits.
    /// `None` when it cannot be read (the key is then looked up, not cached).
    fn data_version(&self) -> Option<i64> {
        let mut probe = self.version_probe.lock().expect("probe lock");
        if let Some((at, version)) = probe.last
            && at.elapsed() < DATA_VERSION_REUSE
        {
            return Some(version);
        }
        if probe.connection.is_none() {
            probe.connection = self.readers.open("PRAGMA busy_timeout = 0;").ok();
        }
        let conn = probe.connection.as_ref()?;
        let version =
            conn.prepare_cached("PRAGMA data_version").and_then(|mut s| s.query_row([], |row| row.get(0))).ok()?;
        probe.last = Some((std::time::Instant::now(), version));
        Some(version)
    }
}

/// Claims `dir` for one serving process until the returned file is dropped
/// (or the process ends): the hot-operation cache is exact only while this
/// process is the file's one writer. Other commands (`key create`,
/// `backup`) may still open the file beside it; a second `serve` may not.
pub fn claim_for_serving(dir: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create data directory {}", dir.display()))?;
    let path = dir.join("longrun.serve.lock");
    let file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another longrun serve is using {} (one serving process per SQLite file;              several nodes share PostgreSQL instead)",
            dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("cannot lock {}", path.display())),
    }
}

/// The writer's connection: configured, checked (or, for a file too large
/// to check within `patience`, still being checked by the returned
/// `Background`), migrated.
fn open_writer(
    path: &Path,
    patience: std::time::Duration,
) -> anyhow::Result<(Connection, Option<Arc<check::Background>>)> {
    // Before opening: opening may create the WAL, which would hide how the
    // last process left the file.
    let left_clean = check::left_clean(path);
    let mut conn = Connection::open(path).with_context(|| format!("cannot open SQLite database {}", path.display()))?;
    // FULL: in WAL mode, NORMAL may lose the last commits on power loss;
    // a 2xx promises durability, so every commit syncs the WAL.
    // temp_store MEMORY: each write of a batch runs in its own savepoint,
    // whose undo copies of pages otherwise spill to a temporary file
    // (a quarter of a create's CPU went to those writes).
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA busy_timeout = 5000;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;",
    )
    .with_context(|| format!("cannot configure SQLite database {}", path.display()))?;
    let integrity = match left_clean {
        true => {
            tracing::info!(file = %path.display(), "integrity check skipped: the file is as a clean stop left it");
            None
        }
        false => {
            // The configuration above replayed any WAL a crash left, so the
            // check reads the file as it now is. A migration waits for the
            // whole check: it must not rewrite a damaged file.
            let check = check::Background::start(path)?;
            let patience = match schema::pending(&conn) {
                Ok(false) => Some(patience),
                Ok(true) | Err(_) => None,
            };
            let outcome = match patience {
                Some(patience) if patience.is_zero() => {
                    check.leave();
                    None
                }
                patience => check.wait(patience),
            };
            match outcome {
                Some(Err(damage)) => {
                    check.finish();
                    return Err(damage.into());
                }
                Some(Ok(())) => {}
                None => tracing::info!(file = %path.display(), "serving while the integrity check goes on"),
            }
            Some(check)
        }
    };
    schema::migrate(&mut conn).with_context(|| format!("database {}", path.display()))?;
    Ok((conn, integrity))
}

impl Drop for SqliteStore {
    /// Closes the database cleanly: idle readers first, then the writer,
    /// whose close (the last one) checkpoints the WAL into the file and
    /// removes it. Waits for that, so a process that exits right after a
    /// graceful shutdown leaves one complete file behind.
    fn drop(&mut self) {
        self.readers.idle.lock().expect("pool lock").clear();
        self.readers.in_place.lock().expect("pool lock").clear();
        self.version_probe.lock().expect("probe lock").connection.take();
        if let Some(check) = &self.integrity {
            check.finish();
        }
        // A file is vouched for only when it was checked whole since the
        // last crash: a check cut short by this stop runs again next time.
        let vouch = self.integrity.as_ref().is_none_or(|check| check.passed());
        drop(self.writer.take()); // the writer thread ends once its queue is empty
        if let Some(thread) = self.writer_thread.take()
            && let Ok(true) = thread.join()
            && vouch
        {
            check::note_clean_stop(&self.readers.path);
        }
    }
}

impl ReadPool {
    fn take(&self) -> Result<Connection, StoreError> {
        if let Some(conn) = self.idle.lock().expect("pool lock").pop() {
            return Ok(conn);
        }
        self.open("PRAGMA busy_timeout = 5000;")
    }

    fn take_in_place(&self) -> Result<Connection, StoreError> {
        if let Some(conn) = self.in_place.lock().expect("pool lock").pop() {
            return Ok(conn);
        }
        self.open("PRAGMA busy_timeout = 0;")
    }

    /// A read-only connection, with `settings` applied.
    fn open(&self, settings: &str) -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
        )?;
        conn.execute_batch("PRAGMA query_only = ON;")?;
        conn.execute_batch(settings)?;
        Ok(conn)
    }

    fn give_back(&self, conn: Connection) {
        self.idle.lock().expect("pool lock").push(conn);
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_operation(&self, op: &Operation) -> Result<(), StoreError> {
        self.write(Write::CreateOperation(op.clone())).await.map(drop)
    }

    async fn get_operation(&self, id: OperationId) -> Result<Option<Arc<Operation>>, StoreError> {
        self.refuse_if_damaged()?;
        if let Some(hot) = self.hot.get(id) {
            return Ok(Some(hot));
        }
        let generation = self.hot.generation();
        let op = self
            .point_read(move |conn| {
                let sql = format!("SELECT {OPERATION_COLUMNS} FROM operations WHERE id = ?1");
                let mut stmt = conn.prepare_cached(&sql)?;
                let mut rows = stmt.query_map(params![id.to_string()], operation_from_row)?;
                rows.next().transpose()
            })
            .await?
            .map(Arc::new);
        if let Some(op) = &op {
            self.hot.fetched(Arc::clone(op), generation);
        }
        Ok(op)
    }

    async fn update_operation(&self, op: &Operation, expected_version: i64) -> Result<(), StoreError> {
        self.write(Write::UpdateOperation(op.clone(), expected_version)).await.map(drop)
    }

    async fn list_operations(&self, filter: &ListFilter) -> Result<Vec<Operation>, StoreError> {
        let filter = filter.clone();
        self.read(move |conn| {
            // Each optional filter is written so that a NULL parameter turns it
            // off: one prepared statement serves every combination.
            let sql = format!(
                "SELECT {OPERATION_COLUMNS} FROM operations
                 WHERE (?1 IS NULL OR scope = ?1)
                   AND (?2 IS NULL OR state = ?2)
                   AND (?3 IS NULL OR kind = ?3)
                   AND (?4 IS NULL OR (created_at, id) < (?4, ?5))
                   AND (?7 IS NULL OR created_at >= ?7)
                   AND (?8 IS NULL OR created_at < ?8)
                 ORDER BY created_at DESC, id DESC
                 LIMIT ?6"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(
                params![
                    filter.scope.map(|s| s.to_string()),
                    filter.state.map(|s| s.as_str()),
                    filter.kind.map(|k| k.to_string()),
                    filter.after.map(|(at, _)| at.unix_nanos()),
                    filter.after.map(|(_, id)| id.to_string()),
                    filter.limit,
                    filter.created_from.map(Timestamp::unix_nanos),
                    filter.created_before.map(Timestamp::unix_nanos),
                ],
                operation_from_row,
            )?;
            rows.collect()
        })
        .await
    }

    async fn due_scripts(&self, now: Timestamp, limit: u32) -> Result<Vec<Operation>, StoreError> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {OPERATION_COLUMNS} FROM operations WHERE script_due_at <= ?1 ORDER BY script_due_at LIMIT ?2"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![now.unix_nanos(), limit], operation_from_row)?;
            rows.collect()
        })
        .await
    }

    async fn claimable(&self, kinds: &[Kind], scope: Option<&Scope>, limit: u32) -> Result<Vec<Operation>, StoreError> {
        let kinds = serde_json::to_string(&kinds.iter().map(|k| k.to_string()).collect::<Vec<_>>()).expect("strings");
        let scope = scope.map(|s| s.to_string());
        self.read(move |conn| {
            let sql = format!(
                "SELECT {OPERATION_COLUMNS} FROM operations
                 WHERE state = 'NotStarted' AND script IS NULL
                   AND kind IN (SELECT value FROM json_each(?1))
                   AND (?2 IS NULL OR scope = ?2)
                 ORDER BY created_at, id LIMIT ?3"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![kinds, scope, limit], operation_from_row)?;
            rows.collect()
        })
        .await
    }

    async fn expired_leases(&self, now: Timestamp, limit: u32) -> Result<Vec<Operation>, StoreError> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {OPERATION_COLUMNS} FROM operations WHERE lease_expires_at <= ?1 AND state = 'Running' \
                 ORDER BY lease_expires_at LIMIT ?2"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![now.unix_nanos(), limit], operation_from_row)?;
            rows.collect()
        })
        .await
    }

    async fn next_work_due(&self) -> Result<Option<Timestamp>, StoreError> {
        self.read(|conn| {
            // Each arm walks its partial index from the front.
            let mut stmt = conn.prepare_cached(
                "SELECT min(at) FROM (
                   SELECT * FROM (SELECT script_due_at AS at FROM operations
                                  WHERE script_due_at IS NOT NULL ORDER BY script_due_at LIMIT 1)
                   UNION ALL
                   SELECT * FROM (SELECT lease_expires_at FROM operations
                                  WHERE lease_expires_at IS NOT NULL AND state = 'Running'
                                  ORDER BY lease_expires_at LIMIT 1))",
            )?;
            stmt.query_row([], |row| row.get::<_, Option<i64>>(0)).map(|at| at.map(Timestamp::from_unix_nanos))
        })
        .await
    }

    async fn changes_since(&self, scope: Option<&Scope>, after: i64, limit: u32) -> Result<Vec<Change>, StoreError> {
        let scope = scope.map(|s| s.to_string());
        let rows = self
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT seq, operation_id, scope, version FROM changes \
                     WHERE seq > ?1 AND (?2 IS NULL OR scope = ?2) ORDER BY seq LIMIT ?3",
                )?;
                let rows = stmt.query_map(params![after, scope, limit], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, i64>(3)?,
                    ))
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        rows.into_iter().map(|(seq, id, scope, version)| decode_change(seq, &id, &scope, version)).collect()
    }

    async fn begin_repeatable(
        &self,
        key: &str,
        fingerprint: &str,
        now: Timestamp,
        stale_before: Timestamp,
        expires_at: Timestamp,
    ) -> Result<RepeatBegin, StoreError> {
        let begin = Write::BeginRepeatable {
            key: key.to_owned(),
            fingerprint: fingerprint.to_owned(),
            now,
            stale_before,
            expires_at,
        };
        if self.write(begin).await? == 1 {
            return Ok(RepeatBegin::Started);
        }
        let key = key.to_owned();
        let found = self
            .read(move |conn| {
                let mut stmt =
                    conn.prepare_cached("SELECT fingerprint, response FROM repeatable_requests WHERE key = ?1")?;
                let mut rows = stmt
                    .query_map(params![key], |row| Ok((row.get::<_, String>(0)?, row.get::<_, Option<String>>(1)?)))?;
                rows.next().transpose()
            })
            .await?;
        repeat_state(found)
    }

    async fn finish_repeatable(&self, key: &str, response: &StoredResponse) -> Result<(), StoreError> {
        let response = serde_json::to_string(response).map_err(anyhow::Error::new)?;
        self.write(Write::FinishRepeatable { key: key.to_owned(), response }).await.map(drop)
    }

    async fn abandon_repeatable(&self, key: &str) -> Result<(), StoreError> {
        self.write(Write::AbandonRepeatable { key: key.to_owned() }).await.map(drop)
    }

    async fn create_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        let created = self.write(Write::CreateKey(key.clone())).await.map(drop);
        self.forget_keys(); // it may have been looked up, and remembered as unknown, already
        created
    }

    async fn purge_expired(&self, now: Timestamp, forget_at: Timestamp, limit: u32) -> Result<u64, StoreError> {
        self.write(Write::PurgeExpired(now, forget_at, limit)).await
    }

    async fn delete_finished(&self, id: OperationId, forget_at: Timestamp) -> Result<(), StoreError> {
        match self.write(Write::DeleteFinished(id, forget_at)).await? {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    async fn find_tombstone(&self, id: OperationId) -> Result<Option<(Scope, Kind)>, StoreError> {
        let found = self
            .point_read(move |conn| {
                let mut stmt = conn.prepare_cached("SELECT scope, kind FROM tombstones WHERE id = ?1")?;
                let mut rows = stmt.query_map(params![id.to_string()], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                })?;
                rows.next().transpose()
            })
            .await?;
        found.map(|(scope, kind)| decode_scope_kind(&scope, &kind)).transpose()
    }

    async fn latest_change_seq(&self) -> Result<i64, StoreError> {
        self.sqlite_scalar("SELECT max(seq) FROM changes").await
    }

    async fn count_operations(&self) -> Result<Vec<OperationCount>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT state, kind, n FROM operation_counts WHERE n <> 0")?;
            let rows = stmt.query_map([], |row| {
                Ok(OperationCount { state: row.get(0)?, kind: row.get(1)?, count: row.get(2)? })
            })?;
            rows.collect()
        })
        .await
    }

    async fn touch_keys(&self, used: &[(String, Timestamp)]) -> Result<(), StoreError> {
        let used = used.to_vec();
        self.exec(move |conn| {
            let mut stmt = conn.prepare_cached(
                "UPDATE api_keys SET last_used_at = max(coalesce(last_used_at, 0), ?2) WHERE id = ?1",
            )?;
            let mut touched = 0;
            for (id, at) in &used {
                touched += stmt.execute(params![id, at.unix_nanos()])? as u64;
            }
            Ok(touched)
        })
        .await
        .map(drop)
    }

    async fn keys_last_used(&self) -> Result<Vec<(String, Timestamp)>, StoreError> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT id, last_used_at FROM api_keys WHERE last_used_at IS NOT NULL")?;
            let rows = stmt.query_map([], |row| Ok((row.get(0)?, Timestamp::from_unix_nanos(row.get(1)?))))?;
            rows.collect()
        })
        .await
    }

    async fn count_leases_held(&self) -> Result<i64, StoreError> {
        self.sqlite_scalar("SELECT count(*) FROM operations WHERE lease_expires_at IS NOT NULL").await
    }

    fn feed(&self) -> Arc<dyn ChangeFeed> {
        Arc::new(self.feed.clone())
    }

    async fn revoke_key(&self, id: &str, at: Timestamp) -> Result<(), StoreError> {
        let revoked = self.write(Write::RevokeKey(id.to_owned(), at)).await.map(drop);
        self.forget_keys();
        revoked
    }

    async fn find_key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let epoch = self.data_version();
        if let Some(known) = epoch.and_then(|epoch| self.keys.get(hash, epoch)) {
            return Ok(known);
        }
        let owned = hash.to_owned();
        let key = self
            .point_read(move |conn| {
                let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE hash = ?1");
                let mut stmt = conn.prepare_cached(&sql)?;
                let mut rows = stmt.query_map(params![owned], key_from_row)?;
                rows.next().transpose()
            })
            .await?;
        if let Some(epoch) = epoch {
            self.keys.put(hash, key.clone(), epoch);
        }
        Ok(key)
    }

    async fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        self.read(|conn| {
            let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at DESC, id DESC");
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map([], key_from_row)?;
            rows.collect()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_meets_the_store_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_dir(dir.path()).unwrap();
        crate::store::contract::run(Arc::new(store)).await;
    }

    #[test]
    fn a_database_from_a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        Connection::open(&path).unwrap().pragma_update(None, "user_version", 99).unwrap();
        let error = SqliteStore::open(&path).err().expect("must refuse").to_string();
        let chain = format!("{:#}", SqliteStore::open(&path).err().unwrap());
        assert!(chain.contains("schema version 99"), "{error} / {chain}");
    }

    #[tokio::test]
    async fn writes_survive_reopening_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let op = crate::store::contract::sample_operation("projects/reopen");
        {
            let store = SqliteStore::open_dir(dir.path()).unwrap();
            store.create_operation(&op).await.unwrap();
        }
        let store = SqliteStore::open_dir(dir.path()).unwrap();
        assert_eq!(store.get_operation(op.id).await.unwrap().as_deref(), Some(&op));
    }

    /// A store file with dozens of pages of operations, closed as a crash
    /// leaves it (no clean-stop marker); returns the operations' ids.
    async fn crashed_store_file(dir: &Path) -> (PathBuf, Vec<OperationId>) {
        let path = dir.join(FILE_NAME);
        let store = SqliteStore::open(&path).unwrap();
        let mut ids = Vec::new();
        for n in 0..60 {
            let mut op = crate::store::contract::sample_operation("projects/check");
            op.properties = Some(serde_json::json!({"pad": "x".repeat(1500), "n": n}).as_object().unwrap().clone());
            store.create_operation(&op).await.unwrap();
            ids.push(op.id);
        }
        drop(store);
        std::fs::remove_file(check::marker_path(&path)).expect("a clean stop leaves a marker");
        (path, ids)
    }

    #[tokio::test]
    async fn damage_found_by_the_check_after_start_refuses_every_call_and_is_never_vouched_for() {
        let dir = tempfile::tempdir().unwrap();
        let (path, ids) = crashed_store_file(dir.path()).await;
        let pages = std::fs::metadata(&path).unwrap().len() / 4096;
        let mut bytes = std::fs::read(&path).unwrap();
        let middle = (pages / 2 * 4096) as usize;
        bytes[middle..middle + 3 * 4096].fill(0xA5);
        std::fs::write(&path, bytes).unwrap();

        let store = SqliteStore::open_with_patience(&path, std::time::Duration::ZERO).expect("served at once");
        let check = store.integrity.clone().expect("a crash means a check");
        assert!(matches!(check.wait(None), Some(Err(_))), "the check finds the damage");
        for refused in [
            store.get_operation(ids[0]).await.map(drop),
            store.create_operation(&crate::store::contract::sample_operation("projects/check")).await,
            store.list_keys().await.map(drop),
        ] {
            match refused {
                Err(StoreError::Unavailable(why)) => {
                    assert!(why.contains("damaged") && why.contains("longrun restore --from"), "{why}")
                }
                other => panic!("expected the damage to be reported: {other:?}"),
            }
        }
        drop(store);
        assert!(!check::marker_path(&path).exists(), "a damaged file is never noted as cleanly stopped");
    }

    #[tokio::test]
    async fn a_file_checked_whole_after_a_crash_is_vouched_for_at_the_next_clean_stop() {
        let dir = tempfile::tempdir().unwrap();
        let (path, ids) = crashed_store_file(dir.path()).await;
        let store = SqliteStore::open_with_patience(&path, std::time::Duration::ZERO).unwrap();
        assert!(matches!(store.integrity.as_ref().unwrap().wait(None), Some(Ok(()))));
        assert_eq!(store.get_operation(ids[59]).await.unwrap().map(|op| op.id), Some(ids[59]));
        drop(store);
        assert!(check::left_clean(&path), "checked and stopped cleanly: the next start may skip the check");
    }

    fn busy() -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY), None)
    }

    #[tokio::test]
    async fn a_point_read_that_finds_the_database_busy_is_retried_on_the_blocking_pool() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_dir(dir.path()).unwrap();
        let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counted = calls.clone();
        let answer = store
            .point_read(move |conn| match counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 => Err(busy()),
                _ => conn.query_row("SELECT 42", [], |row| row.get::<_, i64>(0)),
            })
            .await;
        assert_eq!(answer.unwrap(), 42);
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2, "in place, then on the pool");
    }

    #[tokio::test]
    async fn a_point_read_busy_on_the_pool_too_is_reported_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_dir(dir.path()).unwrap();
        let answer: Result<i64, _> = store.point_read(|_| Err(busy())).await;
        assert!(matches!(answer, Err(StoreError::Unavailable(_))), "{answer:?}");
    }
}
