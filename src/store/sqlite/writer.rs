//! The single SQLite writer thread, with group commit.
//!
//! SQLite allows one writer at a time, and the cost of a durable write is the
//! fsync at COMMIT. So every write goes through this one thread: it takes
//! whatever jobs are queued (up to `MAX_BATCH`), runs each inside its own
//! SAVEPOINT of one transaction, commits once, and only then answers every
//! caller. Under load, many writes share one fsync; alone, a write pays one.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError};

use rusqlite::{Connection, TransactionBehavior, params};
use tokio::sync::oneshot;

use super::rows::{OPERATION_COLUMNS, operation_params};
use crate::model::{ApiKey, Operation, OperationId, Timestamp};
use crate::store::CHANGE_LOG_KEEP;
use crate::store::StoreError;
use crate::store::feed::{Change, LocalFeed};
use crate::store::hot::HotOperations;

/// Most jobs committed together; bounds the latency one commit adds.
const MAX_BATCH: usize = 256;

/// SQL run on the writer's connection inside a batch.
pub type SqlWrite = Box<dyn Fn(&Connection) -> Result<u64, StoreError> + Send>;

/// One write a caller wants committed.
pub enum Write {
    /// Insert a new operation.
    CreateOperation(Operation),
    /// Replace an operation if its version is still the expected one.
    UpdateOperation(Operation, i64),
    /// Insert a new API key.
    CreateKey(ApiKey),
    /// Revoke a key (id, when).
    RevokeKey(String, Timestamp),
    /// Any other write, as SQL run by a closure inside the batch's
    /// transaction (its own savepoint); returns a count. Never touches the
    /// operations table: the hot-operation cache would not know.
    Exec(SqlWrite),
    /// Start a repeatable request: insert it, or take over a stale pending
    /// one. Touches 1 row when the caller may go ahead, 0 otherwise.
    BeginRepeatable { key: String, fingerprint: String, now: Timestamp, stale_before: Timestamp, expires_at: Timestamp },
    /// Keep a repeatable request's response (JSON).
    FinishRepeatable { key: String, response: String },
    /// Forget a repeatable request.
    AbandonRepeatable { key: String },
    /// Delete up to `limit` operations whose retention ended before `now`,
    /// leaving tombstones until the second timestamp.
    PurgeExpired(Timestamp, Timestamp, u32),
    /// Delete one finished operation now, leaving a tombstone until the
    /// timestamp; touches 0 rows when there is no such finished operation.
    DeleteFinished(OperationId, Timestamp),
}

impl Write {
    /// The change listeners hear about once this write commits.
    fn change(&self, seq: u64) -> Option<Change> {
        match self {
            Write::CreateOperation(op) | Write::UpdateOperation(op, _) => {
                Some(Change { seq: seq as i64, id: op.id, scope: op.scope.clone(), version: op.version })
            }
            _ => None,
        }
    }
}

/// A write and where to send its outcome.
pub struct Job {
    /// What to do.
    pub write: Write,
    /// Answered after the COMMIT that made the write durable (or failed),
    /// with the number of rows it touched, or for an operation write the
    /// change-log position (`seq`) of the change.
    pub reply: oneshot::Sender<Result<u64, StoreError>>,
}

/// Runs until every sender is dropped, then closes the connection and says
/// whether that close succeeded (the last close checkpoints the WAL into the
/// file). Announces each committed change on `feed`, after the COMMIT.
/// Every committed operation version goes into `hot` before its caller
/// hears of the commit.
pub fn run(mut conn: Connection, jobs: Receiver<Job>, feed: LocalFeed, hot: Arc<HotOperations>) -> bool {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        let outcomes = commit_batch(&mut conn, &batch);
        for (job, outcome) in batch.into_iter().zip(outcomes) {
            if outcome.is_ok() {
                match &job.write {
                    Write::CreateOperation(op) | Write::UpdateOperation(op, _) => hot.committed(op),
                    Write::PurgeExpired(..) => hot.forget_all(),
                    Write::DeleteFinished(id, _) => hot.changed(*id, i64::MAX),
                    _ => {}
                }
            }
            if let Ok(seq) = outcome
                && let Some(change) = job.write.change(seq)
            {
                feed.publish(change);
            }
            // A caller that gave up (request dropped) is not an error here.
            let _ = job.reply.send(outcome);
        }
    }
    conn.close().is_ok()
}

/// Applies the batch in one transaction; per-job failures roll back only
/// that job's savepoint. If the COMMIT itself fails, every job fails.
fn commit_batch(conn: &mut Connection, batch: &[Job]) -> Vec<Result<u64, StoreError>> {
    let mut outcomes = Vec::with_capacity(batch.len());
    let committed = (|| -> Result<(), StoreError> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Savepoints as cached statements: rusqlite's `Savepoint` parses its
        // SQL afresh each time, a tenth of a create's CPU in the profile.
        for job in batch {
            tx.prepare_cached("SAVEPOINT job")?.execute([])?;
            let outcome = apply(&tx, &job.write);
            if outcome.is_ok() {
                tx.prepare_cached("RELEASE job")?.execute([])?;
            } else {
                // SQLite may have rolled back the whole transaction already
                // (disk full, I/O error): then nothing of the batch is
                // committed, and every job must hear why.
                if tx.is_autocommit() {
                    return outcome.map(drop);
                }
                // Otherwise only this job is undone.
                tx.prepare_cached("ROLLBACK TO job")?.execute([])?;
                tx.prepare_cached("RELEASE job")?.execute([])?;
            }
            outcomes.push(outcome);
        }
        Ok(tx.commit()?)
    })();
    match committed {
        Ok(()) => outcomes,
        Err(failure) => {
            tracing::error!(error = %failure, jobs = batch.len(), "SQLite commit failed");
            batch.iter().map(|_| Err(copy_of(&failure))).collect()
        }
    }
}

fn apply(conn: &Connection, write: &Write) -> Result<u64, StoreError> {
    match write {
        Write::CreateOperation(op) => {
            let sql = format!(
                "INSERT INTO operations ({OPERATION_COLUMNS}) VALUES \
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)"
            );
            let params = operation_params(op);
            conn.prepare_cached(&sql)?.execute(rusqlite::params_from_iter(params.iter())).map_err(map_insert_error)?;
            log_change(conn, op)
        }
        Write::UpdateOperation(op, expected) => {
            let sql = "UPDATE operations SET state = ?4, percent_complete = ?5, started_at = ?7, \
                       last_action_at = ?8, finished_at = ?9, resource_location = ?10, \
                       details_location = ?11, properties = ?12, error = ?13, version = ?14, \
                       expires_at = ?15, script = ?17, script_due_at = ?18, attempts = ?19, lease_owner = ?20, \
                       lease_expires_at = ?21 WHERE id = ?1 AND version = ?23";
            let mut params = operation_params(op);
            params.push(Box::new(*expected));
            let changed = conn.prepare_cached(sql)?.execute(rusqlite::params_from_iter(params.iter()))?;
            if changed == 1 {
                return log_change(conn, op);
            }
            let exists: bool = conn
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM operations WHERE id = ?1)")?
                .query_row(params![op.id.to_string()], |row| row.get(0))?;
            Err(if exists { StoreError::VersionMismatch } else { StoreError::NotFound })
        }
        Write::CreateKey(key) => conn
            .prepare_cached(
                "INSERT INTO api_keys (id, hash, scope, role, name, created_at, revoked_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                key.id,
                key.hash,
                key.scope.to_string(),
                key.role.as_str(),
                key.name,
                key.created_at.unix_nanos(),
                key.revoked_at.map(|t| t.unix_nanos()),
            ])
            .map(|n| n as u64)
            .map_err(map_insert_error),
        Write::BeginRepeatable { key, fingerprint, now, stale_before, expires_at } => {
            let inserted = conn
                .prepare_cached(
                    "INSERT INTO repeatable_requests (key, fingerprint, response, started_at, expires_at) \
                     VALUES (?1, ?2, NULL, ?3, ?4) ON CONFLICT (key) DO UPDATE SET \
                     fingerprint = excluded.fingerprint, started_at = excluded.started_at, \
                     expires_at = excluded.expires_at \
                     WHERE repeatable_requests.response IS NULL AND repeatable_requests.started_at < ?5",
                )?
                .execute(params![
                    key,
                    fingerprint,
                    now.unix_nanos(),
                    expires_at.unix_nanos(),
                    stale_before.unix_nanos()
                ])?;
            Ok(inserted as u64)
        }
        Write::FinishRepeatable { key, response } => Ok(conn
            .prepare_cached("UPDATE repeatable_requests SET response = ?2 WHERE key = ?1")?
            .execute(params![key, response])? as u64),
        Write::Exec(run) => run(conn),
        Write::RevokeKey(id, at) => {
            let changed = conn
                .prepare_cached("UPDATE api_keys SET revoked_at = min(coalesce(revoked_at, ?2), ?2) WHERE id = ?1")?
                .execute(params![id, at.unix_nanos()])?;
            if changed == 0 { Err(StoreError::NotFound) } else { Ok(changed as u64) }
        }
        Write::AbandonRepeatable { key } => Ok(conn
            .prepare_cached("DELETE FROM repeatable_requests WHERE key = ?1 AND response IS NULL")?
            .execute(params![key])? as u64),
        Write::PurgeExpired(now, forget_at, limit) => {
            conn.prepare_cached("DELETE FROM tombstones WHERE forget_at < ?1")?.execute(params![now.unix_nanos()])?;
            conn.prepare_cached("DELETE FROM repeatable_requests WHERE expires_at < ?1")?
                .execute(params![now.unix_nanos()])?;
            conn.prepare_cached("DELETE FROM changes WHERE at < ?1")?
                .execute(params![now.unix_nanos() - CHANGE_LOG_KEEP.as_nanos() as i64])?;
            conn.execute_batch("CREATE TEMP TABLE IF NOT EXISTS purging (id TEXT PRIMARY KEY); DELETE FROM purging;")?;
            conn.prepare_cached("INSERT INTO purging SELECT id FROM operations WHERE expires_at < ?1 LIMIT ?2")?
                .execute(params![now.unix_nanos(), limit])?;
            conn.prepare_cached(
                "INSERT OR REPLACE INTO tombstones (id, scope, kind, forget_at) \
                 SELECT id, scope, kind, ?1 FROM operations WHERE id IN (SELECT id FROM purging)",
            )?
            .execute(params![forget_at.unix_nanos()])?;
            let purged =
                conn.prepare_cached("DELETE FROM operations WHERE id IN (SELECT id FROM purging)")?.execute([])?;
            Ok(purged as u64)
        }
        Write::DeleteFinished(id, forget_at) => {
            let id = id.to_string();
            conn.prepare_cached(&format!(
                "INSERT OR REPLACE INTO tombstones (id, scope, kind, forget_at) \
                 SELECT id, scope, kind, ?2 FROM operations WHERE id = ?1 AND state IN {FINISHED}"
            ))?
            .execute(params![id, forget_at.unix_nanos()])?;
            let deleted = conn
                .prepare_cached(&format!("DELETE FROM operations WHERE id = ?1 AND state IN {FINISHED}"))?
                .execute(params![id])?;
            Ok(deleted as u64)
        }
    }
}

/// The finished states, as the operations table spells them.
const FINISHED: &str = "('Succeeded', 'Failed', 'Canceled', 'CompleteWithErrors')";

/// Appends the change to the log; returns its position.
fn log_change(conn: &Connection, op: &Operation) -> Result<u64, StoreError> {
    conn.prepare_cached("INSERT INTO changes (operation_id, scope, version, at) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![op.id.to_string(), op.scope.to_string(), op.version, op.last_action_at.unix_nanos()])?;
    Ok(conn.last_insert_rowid() as u64)
}

fn map_insert_error(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => StoreError::AlreadyExists,
        _ => map_error(e),
    }
}

/// Maps driver errors to the backend-neutral ones the HTTP layer understands.
pub fn map_error(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode::*;
    match e.sqlite_error_code() {
        Some(DiskFull) => StoreError::Full,
        Some(DatabaseBusy | DatabaseLocked) => StoreError::Unavailable("the database is busy".into()),
        Some(SystemIoFailure | CannotOpen) => StoreError::Unavailable(format!("I/O error: {e}")),
        _ => StoreError::Other(anyhow::Error::new(e).context("SQLite")),
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        map_error(e)
    }
}

/// `StoreError` holds an `anyhow::Error`, which is not `Clone`; a failed
/// commit must still reach every caller of the batch.
fn copy_of(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(why) => StoreError::Unavailable(why.clone()),
        StoreError::Full => StoreError::Full,
        other => StoreError::Other(anyhow::anyhow!("{other:#}")),
    }
}
