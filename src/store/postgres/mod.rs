//! The shared backend: PostgreSQL, for several stateless longrun nodes.
//!
//! Every operation write is one statement that also appends to the change
//! log, committed together with the other writes of its round (`batch`:
//! group commit); once it has committed, `notifier` announces it to every
//! node. There is no transaction held open between calls and no node-local
//! state to keep in sync. Every call is bounded in time: a
//! database that is away yields `Unavailable` (HTTP 503) quickly, and the
//! pool reconnects by itself when it returns.

mod batch;
mod changes;
mod listener;
mod notifier;
mod rows;
mod schema;
mod shared;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use self::rows::{KEY_COLUMNS, OPERATION_COLUMNS, key_from_row, operation_from_row};
use super::feed::Change;
use super::feed::{ChangeFeed, LocalFeed};
use super::hot::HotOperations;
use super::{
    CHANGE_LOG_KEEP, ListFilter, OperationCount, RepeatBegin, Store, StoreError, StoredResponse, decode_change,
    decode_scope_kind, repeat_state,
};
use crate::model::{ApiKey, Kind, Operation, OperationId, Scope, Timestamp};

/// Longest any one store call may take before it is reported unavailable.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a cached operation is served without a notification saying it
/// changed: bounds what a lost notification (its writer died between commit
/// and notify) can leave stale on the other nodes.
const HOT_MAX_AGE: Duration = Duration::from_secs(1);
/// Longest a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The PostgreSQL store.
pub struct PostgresStore {
    pool: Pool,
    /// Shared, pipelined connections for status reads (taken from `pool`).
    readers: shared::Shared,
    /// Commits operation writes in rounds, and announces them to every node.
    writes: batch::Batcher,
    feed: LocalFeed,
    listener: tokio::task::JoinHandle<()>,
    /// Recent key lookups (a round trip each otherwise).
    keys: super::key_cache::KeyCache,
    /// Operations read or written lately, kept current by the change feed.
    hot: Arc<HotOperations>,
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl PostgresStore {
    /// Connects, migrates, and starts listening for changes.
    pub async fn connect(url: &str, pool_size: usize) -> anyhow::Result<PostgresStore> {
        let mut config: tokio_postgres::Config = url.parse().context("invalid PostgreSQL URL")?;
        config.connect_timeout(CONNECT_TIMEOUT);
        config.keepalives_idle(Duration::from_secs(10));
        if config.get_application_name().is_none() {
            config.application_name("longrun");
        }
        let manager =
            Manager::from_config(config.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CALL_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .context("cannot build the PostgreSQL pool")?;
        let mut client = pool.get().await.context("cannot connect to PostgreSQL")?;
        schema::migrate(&mut client).await.context("PostgreSQL schema")?;
        drop(client);
        let feed = LocalFeed::default();
        let hot = Arc::new(HotOperations::shared(HOT_MAX_AGE));
        let listener = tokio::spawn(listener::run(config, feed.clone(), hot.clone()));
        // A quarter of the pool, at most 4: enough connections to keep a few
        // backends busy, few enough that each carries many queries per write.
        let readers = shared::Shared::new((pool_size / 4).clamp(1, 4));
        let writes = batch::Batcher::start(pool.clone(), hot.clone());
        Ok(PostgresStore { pool, readers, writes, feed, listener, keys: Default::default(), hot })
    }

    /// Runs `f` on a pooled connection, bounded by `CALL_TIMEOUT`.
    async fn with<T>(&self, f: impl AsyncFnOnce(&Object) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.bounded(async {
            let client = self.pool.get().await.map_err(|e| StoreError::Unavailable(format!("PostgreSQL: {e}")))?;
            f(&client).await
        })
        .await
    }

    /// Runs `call`, bounded by `CALL_TIMEOUT`, and times it.
    async fn bounded<T>(&self, call: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        let started = std::time::Instant::now();
        let outcome = tokio::time::timeout(CALL_TIMEOUT, call)
            .await
            .map_err(|_| StoreError::Unavailable("PostgreSQL did not answer in time".into()))?;
        super::observe("postgres", "call", started);
        outcome
    }
}

/// Maps driver errors: lost connections and server shutdowns are
/// `Unavailable` (retry later); constraint violations are conflicts.
/// Every driver error, as the store reports it: a plain `?` converts.
impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> StoreError {
        map_error(e)
    }
}

/// What a driver error means to the layers above.
fn map_error(e: tokio_postgres::Error) -> StoreError {
    let unavailable = [
        SqlState::ADMIN_SHUTDOWN,
        SqlState::CRASH_SHUTDOWN,
        SqlState::CANNOT_CONNECT_NOW,
        SqlState::TOO_MANY_CONNECTIONS,
        SqlState::OUT_OF_MEMORY,
        SqlState::READ_ONLY_SQL_TRANSACTION,
    ];
    match e.code() {
        Some(code) if *code == SqlState::UNIQUE_VIOLATION => StoreError::AlreadyExists,
        Some(code) if *code == SqlState::DISK_FULL => StoreError::Full,
        Some(code) if unavailable.contains(code) => StoreError::Unavailable(format!("PostgreSQL: {e}")),
        None if e.is_closed() || std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>()) => {
            StoreError::Unavailable(format!("PostgreSQL connection: {e}"))
        }
        _ => StoreError::Other(anyhow::Error::new(e).context("PostgreSQL")),
    }
}

fn decode<T>(result: anyhow::Result<T>) -> Result<T, StoreError> {
    result.map_err(|e| StoreError::Other(e.context("PostgreSQL row")))
}

#[async_trait]
impl Store for PostgresStore {
    async fn create_operation(&self, op: &Operation) -> Result<(), StoreError> {
        self.bounded(self.writes.write(batch::Write::Create(op.clone()))).await
    }

    async fn get_operation(&self, id: OperationId) -> Result<Option<Arc<Operation>>, StoreError> {
        static SQL: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| format!("SELECT {OPERATION_COLUMNS} FROM operations WHERE id = $1"));
        if let Some(hot) = self.hot.get(id) {
            return Ok(Some(hot));
        }
        let generation = self.hot.generation();
        let read = async {
            let client = self.readers.client(&self.pool).await?;
            let statement = client.prepare_cached(&SQL).await?;
            let row = client.query_opt(&statement, &[&id.uuid()]).await?;
            row.map(|row| decode(operation_from_row(&row)).map(Arc::new)).transpose()
        };
        let found = self.bounded(read).await?;
        if let Some(op) = &found {
            self.hot.fetched(Arc::clone(op), generation);
        }
        Ok(found)
    }

    async fn update_operation(&self, op: &Operation, expected_version: i64) -> Result<(), StoreError> {
        self.bounded(self.writes.write(batch::Write::Update(op.clone(), expected_version))).await
    }

    async fn list_operations(&self, filter: &ListFilter) -> Result<Vec<Operation>, StoreError> {
        let scope = filter.scope.as_ref().map(|s| s.to_string());
        let state = filter.state.map(|s| s.as_str());
        let kind = filter.kind.as_ref().map(|k| k.to_string());
        let after_at = filter.after.map(|(at, _)| at.unix_nanos());
        let after_id = filter.after.map(|(_, id)| id.uuid());
        let limit = i64::from(filter.limit);
        let from = filter.created_from.map(Timestamp::unix_nanos);
        let before = filter.created_before.map(Timestamp::unix_nanos);
        self.with(async |client| {
            let sql = format!(
                "SELECT {OPERATION_COLUMNS} FROM operations
                 WHERE ($1::text IS NULL OR scope = $1)
                   AND ($2::text IS NULL OR state = $2)
                   AND ($3::text IS NULL OR kind = $3)
                   AND ($4::bigint IS NULL OR (created_at, id) < ($4, $5::uuid))
                   AND ($7::bigint IS NULL OR created_at >= $7)
                   AND ($8::bigint IS NULL OR created_at < $8)
                 ORDER BY created_at DESC, id DESC
                 LIMIT $6"
            );
            let statement = client.prepare_cached(&sql).await?;
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 8] =
                [&scope, &state, &kind, &after_at, &after_id, &limit, &from, &before];
            let rows = client.query(&statement, &params).await?;
            rows.iter().map(|row| decode(operation_from_row(row))).collect()
        })
        .await
    }

    async fn purge_expired(&self, now: Timestamp, forget_at: Timestamp, limit: u32) -> Result<u64, StoreError> {
        self.with(async |client| {
            client.execute("DELETE FROM tombstones WHERE forget_at < $1", &[&now.unix_nanos()]).await?;
            client.execute("SELECT longrun_fold_counts()", &[]).await?;
            client.execute("DELETE FROM repeatable_requests WHERE expires_at < $1", &[&now.unix_nanos()]).await?;
            let log_horizon = now.unix_nanos() - CHANGE_LOG_KEEP.as_nanos() as i64;
            client.execute(changes::PURGE, &[&log_horizon]).await?;
            // One statement: the rows deleted are exactly the ones entombed.
            let sql = "WITH gone AS (DELETE FROM operations WHERE id IN \
                       (SELECT id FROM operations WHERE expires_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED) \
                       RETURNING id, scope, kind) \
                       INSERT INTO tombstones (id, scope, kind, forget_at) SELECT id, scope, kind, $3 FROM gone \
                       ON CONFLICT (id) DO UPDATE SET forget_at = EXCLUDED.forget_at";
            let purged = client.execute(sql, &[&now.unix_nanos(), &i64::from(limit), &forget_at.unix_nanos()]).await?;
            if purged > 0 {
                // Other nodes' caches keep a purged operation until its
                // entry's age runs out: it had expired already.
                self.hot.forget_all();
            }
            Ok(purged)
        })
        .await
    }

    async fn delete_finished(&self, id: OperationId, forget_at: Timestamp) -> Result<(), StoreError> {
        let deleted = self
            .with(async |client| {
                // One statement: the row deleted is exactly the one entombed.
                let sql = "WITH gone AS (DELETE FROM operations WHERE id = $1 \
                           AND state IN ('Succeeded', 'Failed', 'Canceled', 'CompleteWithErrors') \
                           RETURNING id, scope, kind) \
                           INSERT INTO tombstones (id, scope, kind, forget_at) SELECT id, scope, kind, $2 FROM gone \
                           ON CONFLICT (id) DO UPDATE SET forget_at = EXCLUDED.forget_at";
                Ok(client.execute(sql, &[&id.uuid(), &forget_at.unix_nanos()]).await?)
            })
            .await?;
        // Other nodes' caches keep it until their entry's age runs out (1 s).
        self.hot.changed(id, i64::MAX);
        if deleted == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    async fn find_tombstone(&self, id: OperationId) -> Result<Option<(Scope, Kind)>, StoreError> {
        self.with(async |client| {
            let statement = client.prepare_cached("SELECT scope, kind FROM tombstones WHERE id = $1").await?;
            let row = client.query_opt(&statement, &[&id.uuid()]).await?;
            row.map(|row| decode_scope_kind(row.get(0), row.get(1))).transpose()
        })
        .await
    }

    async fn due_scripts(&self, now: Timestamp, limit: u32) -> Result<Vec<Operation>, StoreError> {
        self.with(async |client| {
            let sql = format!(
                "SELECT {OPERATION_COLUMNS} FROM operations WHERE script_due_at <= $1 ORDER BY script_due_at LIMIT $2"
            );
            let statement = client.prepare_cached(&sql).await?;
            let rows = client.query(&statement, &[&now.unix_nanos(), &i64::from(limit)]).await?;
            rows.iter().map(|row| decode(operation_from_row(row))).collect()
        })
        .await
    }

    async fn next_work_due(&self) -> Result<Option<Timestamp>, StoreError> {
        self.with(async |client| {
            let sql = "SELECT least(
                 (SELECT script_due_at FROM operations WHERE script_due_at IS NOT NULL
                  ORDER BY script_due_at LIMIT 1),
                 (SELECT lease_expires_at FROM operations WHERE lease_expires_at IS NOT NULL AND state = 'Running'
                  ORDER BY lease_expires_at LIMIT 1))";
            let statement = client.prepare_cached(sql).await?;
            let row = client.query_one(&statement, &[]).await?;
            Ok(row.get::<_, Option<i64>>(0).map(Timestamp::from_unix_nanos))
        })
        .await
    }

    async fn claimable(&self, kinds: &[Kind], scope: Option<&Scope>, limit: u32) -> Result<Vec<Operation>, StoreError> {
        let kinds: Vec<String> = kinds.iter().map(|k| k.to_string()).collect();
        let scope = scope.map(|s| s.to_string());
        self.with(async |client| {
            let sql = format!(
                "SELECT {OPERATION_COLUMNS} FROM operations
                 WHERE state = 'NotStarted' AND script IS NULL AND kind = ANY($1)
                   AND ($2::text IS NULL OR scope = $2)
                 ORDER BY created_at, id LIMIT $3"
            );
            let statement = client.prepare_cached(&sql).await?;
            let rows = client.query(&statement, &[&kinds, &scope, &i64::from(limit)]).await?;
            rows.iter().map(|row| decode(operation_from_row(row))).collect()
        })
        .await
    }

    async fn expired_leases(&self, now: Timestamp, limit: u32) -> Result<Vec<Operation>, StoreError> {
        self.with(async |client| {
            let sql = format!(
                "SELECT {OPERATION_COLUMNS} FROM operations WHERE lease_expires_at <= $1 AND state = 'Running' \
                 ORDER BY lease_expires_at LIMIT $2"
            );
            let statement = client.prepare_cached(&sql).await?;
            let rows = client.query(&statement, &[&now.unix_nanos(), &i64::from(limit)]).await?;
            rows.iter().map(|row| decode(operation_from_row(row))).collect()
        })
        .await
    }

    async fn changes_since(&self, scope: Option<&Scope>, after: i64, limit: u32) -> Result<Vec<Change>, StoreError> {
        let scope = scope.map(|s| s.to_string());
        self.with(async |client| {
            changes::place(client).await?;
            let statement = client.prepare_cached(changes::SINCE).await?;
            let rows = client.query(&statement, &[&after, &scope, &i64::from(limit)]).await?;
            rows.iter().map(|row| decode_change(row.get(0), row.get(1), row.get(2), row.get(3))).collect()
        })
        .await
    }

    async fn begin_repeatable(
        &self,
        key: &str,
        fingerprint: &str,
        now: Timestamp,
        stale_before: Timestamp,
        expires_at: Timestamp,
    ) -> Result<RepeatBegin, StoreError> {
        self.with(async |client| {
            let started = client
                .execute(
                    "INSERT INTO repeatable_requests (key, fingerprint, response, started_at, expires_at) \
                     VALUES ($1, $2, NULL, $3, $4) ON CONFLICT (key) DO UPDATE SET \
                     fingerprint = EXCLUDED.fingerprint, started_at = EXCLUDED.started_at, \
                     expires_at = EXCLUDED.expires_at \
                     WHERE repeatable_requests.response IS NULL AND repeatable_requests.started_at < $5",
                    &[&key, &fingerprint, &now.unix_nanos(), &expires_at.unix_nanos(), &stale_before.unix_nanos()],
                )
                .await?;
            if started == 1 {
                return Ok(RepeatBegin::Started);
            }
            let row = client
                .query_opt("SELECT fingerprint, response::text FROM repeatable_requests WHERE key = $1", &[&key])
                .await?;
            repeat_state(row.map(|row| (row.get(0), row.get(1))))
        })
        .await
    }

    async fn finish_repeatable(&self, key: &str, response: &StoredResponse) -> Result<(), StoreError> {
        let response = serde_json::to_value(response).map_err(anyhow::Error::new)?;
        self.with(async |client| {
            client.execute("UPDATE repeatable_requests SET response = $2 WHERE key = $1", &[&key, &response]).await?;
            Ok(())
        })
        .await
    }

    async fn abandon_repeatable(&self, key: &str) -> Result<(), StoreError> {
        self.with(async |client| {
            client.execute("DELETE FROM repeatable_requests WHERE key = $1 AND response IS NULL", &[&key]).await?;
            Ok(())
        })
        .await
    }

    async fn create_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        let scope = key.scope.to_string();
        let revoked = key.revoked_at.map(|t| t.unix_nanos());
        self.with(async |client| {
            client
                .execute(
                    "INSERT INTO api_keys (id, hash, scope, role, name, created_at, revoked_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[
                        &key.id,
                        &key.hash,
                        &scope,
                        &key.role.as_str(),
                        &key.name,
                        &key.created_at.unix_nanos(),
                        &revoked,
                    ],
                )
                .await?;
            Ok(())
        })
        .await?;
        // It may have been looked up, and remembered as unknown, already.
        self.keys.clear();
        Ok(())
    }

    async fn revoke_key(&self, id: &str, at: Timestamp) -> Result<(), StoreError> {
        self.with(async |client| {
            let changed = client
                .execute(
                    "UPDATE api_keys SET revoked_at = least(revoked_at, $2) WHERE id = $1",
                    &[&id, &at.unix_nanos()],
                )
                .await?;
            if changed == 0 { Err(StoreError::NotFound) } else { Ok(()) }
        })
        .await?;
        self.keys.clear();
        Ok(())
    }

    async fn find_key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
        if let Some(known) = self.keys.get(hash, 0) {
            return Ok(known);
        }
        let key = self
            .with(async |client| {
                let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE hash = $1");
                let statement = client.prepare_cached(&sql).await?;
                let row = client.query_opt(&statement, &[&hash]).await?;
                row.map(|row| decode(key_from_row(&row))).transpose()
            })
            .await?;
        self.keys.put(hash, key.clone(), 0);
        Ok(key)
    }

    async fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        self.with(async |client| {
            let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at DESC, id DESC");
            let rows = client.query(&sql, &[]).await?;
            rows.iter().map(|row| decode(key_from_row(row))).collect()
        })
        .await
    }

    async fn latest_change_seq(&self) -> Result<i64, StoreError> {
        self.with(async |client| {
            changes::place(client).await?;
            let row = client.query_one(changes::LATEST, &[]).await?;
            Ok(row.get::<_, Option<i64>>(0).unwrap_or(0))
        })
        .await
    }

    async fn count_operations(&self) -> Result<Vec<OperationCount>, StoreError> {
        self.with(async |client| {
            client.execute("SELECT longrun_fold_counts()", &[]).await?;
            // Both tables in one snapshot: a fold committing meanwhile moves
            // deltas from one to the other, and is seen whole or not at all.
            let sql = "SELECT state, kind, sum(n)::bigint FROM \
                       (SELECT state, kind, n FROM operation_counts UNION ALL \
                        SELECT state, kind, n FROM operation_count_deltas) AS counted \
                       GROUP BY state, kind HAVING sum(n) <> 0";
            let rows = client.query(sql, &[]).await?;
            Ok(rows
                .iter()
                .map(|row| OperationCount { state: row.get(0), kind: row.get(1), count: row.get(2) })
                .collect())
        })
        .await
    }

    async fn touch_keys(&self, used: &[(String, Timestamp)]) -> Result<(), StoreError> {
        let ids: Vec<&str> = used.iter().map(|(id, _)| id.as_str()).collect();
        let times: Vec<i64> = used.iter().map(|(_, at)| at.unix_nanos()).collect();
        self.with(async |client| {
            let sql = "UPDATE api_keys AS k SET last_used_at = greatest(k.last_used_at, u.at) \
                       FROM unnest($1::text[], $2::bigint[]) AS u(id, at) WHERE k.id = u.id";
            client.execute(sql, &[&ids, &times]).await.map_err(StoreError::from).map(drop)
        })
        .await
    }

    async fn keys_last_used(&self) -> Result<Vec<(String, Timestamp)>, StoreError> {
        self.with(async |client| {
            let sql = "SELECT id, last_used_at FROM api_keys WHERE last_used_at IS NOT NULL";
            let rows = client.query(sql, &[]).await?;
            Ok(rows.iter().map(|row| (row.get(0), Timestamp::from_unix_nanos(row.get(1)))).collect())
        })
        .await
    }

    async fn count_leases_held(&self) -> Result<i64, StoreError> {
        self.pg_scalar("SELECT count(*) FROM operations WHERE lease_expires_at IS NOT NULL").await
    }

    fn feed(&self) -> Arc<dyn ChangeFeed> {
        Arc::new(self.feed.clone())
    }
}

/// Creates an empty schema with a random name and returns `base_url`
/// pointed at it (through `search_path`), so test runs and benchmark runs
/// never see each other's rows. Drop it with `drop_scratch_schema`.
pub async fn scratch_schema(base_url: &str) -> anyhow::Result<String> {
    let schema = format!("longrun_scratch_{}", uuid::Uuid::new_v4().simple());
    let (client, connection) =
        tokio_postgres::connect(base_url, NoTls).await.context("cannot connect to PostgreSQL")?;
    let driver = tokio::spawn(connection);
    client.batch_execute(&format!("CREATE SCHEMA {schema}")).await?;
    drop(client);
    let _ = driver.await;
    let separator = if base_url.contains('?') { '&' } else { '?' };
    Ok(format!("{base_url}{separator}options=-csearch_path%3D{schema}"))
}

/// Drops the schema a `scratch_schema` URL points at.
pub async fn drop_scratch_schema(scratch_url: &str) -> anyhow::Result<()> {
    let schema = scratch_url.rsplit("search_path%3D").next().context("not a scratch URL")?;
    let (client, connection) = tokio_postgres::connect(scratch_url, NoTls).await?;
    let driver = tokio::spawn(connection);
    client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await?;
    drop(client);
    let _ = driver.await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The server the PostgreSQL half runs against, or `None` (skipped).
    fn test_url() -> Option<String> {
        let url = std::env::var("LONGRUN_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty());
        if url.is_none() {
            eprintln!("SKIPPED: LONGRUN_TEST_POSTGRES_URL is unset, so the PostgreSQL half did not run");
        }
        url
    }

    #[tokio::test]
    async fn postgres_meets_the_store_contract() {
        let Some(base) = test_url() else { return };
        let url = scratch_schema(&base).await.unwrap();
        let store = PostgresStore::connect(&url, 8).await.unwrap();
        crate::store::contract::run(Arc::new(store)).await;
        drop_scratch_schema(&url).await.unwrap();
    }

    /// Runs `sql` on the database `url` names.
    async fn execute(url: &str, sql: &str) {
        let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
        let driver = tokio::spawn(connection);
        client.batch_execute(sql).await.unwrap();
        drop(client);
        let _ = driver.await;
    }

    #[tokio::test]
    async fn a_write_the_database_refuses_fails_alone_and_its_round_commits() {
        let Some(base) = test_url() else { return };
        let url = scratch_schema(&base).await.unwrap();
        let store = PostgresStore::connect(&url, 4).await.unwrap();
        let good: Vec<Operation> = (0..3).map(|_| crate::store::contract::sample_operation("projects/fine")).collect();
        let mut poison = crate::store::contract::sample_operation("projects/fine");
        // jsonb refuses the NUL character.
        poison.properties = serde_json::json!({"bad": "\u{0}"}).as_object().cloned();
        let (poisoned, goods) = tokio::join!(
            store.create_operation(&poison),
            futures_util::future::join_all(good.iter().map(|op| store.create_operation(op)))
        );
        assert!(matches!(poisoned, Err(StoreError::Other(_))), "{poisoned:?}");
        for (op, outcome) in good.iter().zip(goods) {
            assert!(outcome.is_ok(), "{outcome:?}");
            assert!(store.get_operation(op.id).await.unwrap().is_some());
        }
        assert!(store.get_operation(poison.id).await.unwrap().is_none());
        drop(store);
        drop_scratch_schema(&url).await.unwrap();
    }

    #[tokio::test]
    async fn a_round_whose_commit_fails_acknowledges_none_of_its_writes() {
        let Some(base) = test_url() else { return };
        let url = scratch_schema(&base).await.unwrap();
        let store = PostgresStore::connect(&url, 4).await.unwrap();
        // Every statement succeeds; the COMMIT of a transaction that wrote
        // into 'projects/doomed' fails, as a commit the disk refuses would.
        execute(
            &url,
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$;
             CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON operations DEFERRABLE INITIALLY DEFERRED
                 FOR EACH ROW WHEN (NEW.scope = 'projects/doomed') EXECUTE FUNCTION refuse();",
        )
        .await;
        let doomed: Vec<Operation> =
            (0..3).map(|_| crate::store::contract::sample_operation("projects/doomed")).collect();
        let fine = crate::store::contract::sample_operation("projects/fine");
        let (outcomes, fine_outcome) = tokio::join!(
            futures_util::future::join_all(doomed.iter().map(|op| store.create_operation(op))),
            store.create_operation(&fine)
        );
        for (op, outcome) in doomed.iter().zip(outcomes) {
            assert!(matches!(outcome, Err(StoreError::Other(_))), "{outcome:?}");
            assert!(store.get_operation(op.id).await.unwrap().is_none(), "nothing of a failed commit is stored");
        }
        assert!(fine_outcome.is_ok(), "a write that commits alone is not failed by its round: {fine_outcome:?}");
        assert!(store.changes_since(Some(&Scope::parse("projects/doomed").unwrap()), 0, 10).await.unwrap().is_empty());
        drop(store);
        drop_scratch_schema(&url).await.unwrap();
    }

    /// Two nodes on one scratch schema, B named `node_b` (its connections
    /// can be told apart), once B's change feed is up.
    async fn two_nodes(url: &str) -> (PostgresStore, PostgresStore) {
        let a = PostgresStore::connect(url, 4).await.unwrap();
        let b = PostgresStore::connect(&format!("{url}&application_name=node_b"), 4).await.unwrap();
        until(|| b.hot.is_live(), "node B's feed is up").await;
        (a, b)
    }

    /// Waits (up to 10 s) until `done`.
    async fn until(done: impl Fn() -> bool, what: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// `op` one version on, written through `store`.
    async fn bump(store: &PostgresStore, op: &Operation) -> Operation {
        let next = Operation { version: op.version + 1, percent_complete: Some(op.version as f64), ..op.clone() };
        store.update_operation(&next, op.version).await.unwrap();
        next
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_through_another_node_never_go_back_and_catch_up() {
        let Some(base) = test_url() else { return };
        let url = scratch_schema(&base).await.unwrap();
        let (a, b) = two_nodes(&url).await;
        let mut op = crate::store::contract::sample_operation("projects/two-nodes");
        a.create_operation(&op).await.unwrap();
        let mut last_seen = 0;
        for _ in 0..50 {
            op = bump(&a, &op).await;
            let seen = b.get_operation(op.id).await.unwrap().expect("created").version;
            assert!(seen >= last_seen, "node B served version {seen} after {last_seen}");
            last_seen = seen;
        }
        let latest = op.version;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while b.get_operation(op.id).await.unwrap().unwrap().version < latest {
            assert!(tokio::time::Instant::now() < deadline, "node B never caught up with version {latest}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop((a, b));
        drop_scratch_schema(&url).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_node_whose_feed_dropped_serves_nothing_from_its_cache() {
        let Some(base) = test_url() else { return };
        let url = scratch_schema(&base).await.unwrap();
        let (a, b) = two_nodes(&url).await;
        let op = crate::store::contract::sample_operation("projects/feed-drop");
        a.create_operation(&op).await.unwrap();
        assert_eq!(b.get_operation(op.id).await.unwrap().unwrap().version, 1); // now cached on B
        execute(
            &url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = 'node_b' AND query LIKE 'LISTEN%'",
        )
        .await;
        until(|| !b.hot.is_live(), "node B notices its feed dropped").await;
        // Changed while B hears nothing: B must read it, not serve version 1.
        let op = bump(&a, &op).await;
        assert_eq!(b.get_operation(op.id).await.unwrap().unwrap().version, 2);
        // Back: B hears changes again.
        until(|| b.hot.is_live(), "node B's feed is back").await;
        assert_eq!(b.get_operation(op.id).await.unwrap().unwrap().version, 2);
        let op = bump(&a, &op).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while b.get_operation(op.id).await.unwrap().unwrap().version < 3 {
            assert!(tokio::time::Instant::now() < deadline, "node B never heard version 3");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop((a, b));
        drop_scratch_schema(&url).await.unwrap();
    }

    #[tokio::test]
    async fn a_change_through_one_node_reaches_the_feed_of_another() {
        let Some(base) = test_url() else { return };
        let url = scratch_schema(&base).await.unwrap();
        let (a, b) = (PostgresStore::connect(&url, 2).await.unwrap(), PostgresStore::connect(&url, 2).await.unwrap());
        let mut heard_on_b = b.feed().subscribe();
        // The listener connects in the background; retry until B hears A.
        let op = crate::store::contract::sample_operation("projects/cross-node");
        a.create_operation(&op).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut version = 1;
        loop {
            match tokio::time::timeout(Duration::from_millis(200), heard_on_b.recv()).await {
                Ok(Ok(change)) if change.id == op.id => break,
                Ok(_) => continue,
                Err(_) => {
                    assert!(tokio::time::Instant::now() < deadline, "node B never heard node A");
                    let mut next = Operation::clone(&a.get_operation(op.id).await.unwrap().unwrap());
                    next.version = version + 1;
                    a.update_operation(&next, version).await.unwrap();
                    version += 1;
                }
            }
        }
        drop((a, b));
        drop_scratch_schema(&url).await.unwrap();
    }

    /// Many writers race; a reader resumes from its last position over and
    /// over, as a reconnecting `GET /v1/events` or the webhook dispatcher
    /// does. Every committed change must be read exactly once, each
    /// operation's in version order: a change whose log row was numbered
    /// before another's but committed after it must not be skipped.
    #[tokio::test]
    async fn a_resuming_reader_sees_every_change_once_under_concurrent_writers() {
        const WRITERS: usize = 12;
        const OPERATIONS_EACH: usize = 3;
        const UPDATES: i64 = 40;
        let Some(base) = test_url() else { return };
        let url = scratch_schema(&base).await.unwrap();
        let store = Arc::new(PostgresStore::connect(&url, WRITERS + 2).await.unwrap());
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (store, done) = (store.clone(), done.clone());
            tokio::spawn(async move {
                let (mut after, mut seen) = (0, Vec::new());
                loop {
                    let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                    // Small batches: the reader resumes from its position constantly.
                    let batch = store.changes_since(None, after, 7).await.unwrap();
                    for change in &batch {
                        assert!(change.seq > after, "positions only grow");
                        after = change.seq;
                        seen.push((change.id, change.version));
                    }
                    if batch.is_empty() && finished {
                        return seen;
                    }
                }
            })
        };
        let writers = (0..WRITERS).map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for _ in 0..OPERATIONS_EACH {
                    let op = crate::store::contract::sample_operation("projects/log-race");
                    store.create_operation(&op).await.unwrap();
                    ids.push(op);
                }
                for version in 1..=UPDATES {
                    for op in &mut ids {
                        let mut next = op.clone();
                        next.version = version + 1;
                        next.percent_complete = Some(version as f64);
                        store.update_operation(&next, version).await.unwrap();
                        *op = next;
                    }
                }
                ids.into_iter().map(|op| op.id).collect::<Vec<_>>()
            })
        });
        let written: Vec<OperationId> =
            futures_util::future::join_all(writers).await.into_iter().flat_map(Result::unwrap).collect();
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        let seen = reader.await.unwrap();
        let mut by_operation: std::collections::HashMap<OperationId, Vec<i64>> = std::collections::HashMap::new();
        for (id, version) in seen {
            by_operation.entry(id).or_default().push(version);
        }
        let all: Vec<i64> = (1..=UPDATES + 1).collect();
        for id in &written {
            assert_eq!(by_operation.get(id), Some(&all), "operation {id}: every version once, in order");
        }
        assert_eq!(by_operation.len(), written.len());
        drop(store);
        drop_scratch_schema(&url).await.unwrap();
    }

    #[tokio::test]
    async fn nodes_starting_together_migrate_once() {
        let Some(base) = test_url() else { return };
        let url = scratch_schema(&base).await.unwrap();
        let starts = (0..4).map(|_| PostgresStore::connect(&url, 2));
        for started in futures_util::future::join_all(starts).await {
            started.expect("every node starts");
        }
        drop_scratch_schema(&url).await.unwrap();
    }
}
