//! The PostgreSQL schema, as numbered migrations, applied at start-up under
//! an advisory lock so nodes starting together never race.

use anyhow::{Context, bail};
use deadpool_postgres::Object;

/// Migration N is `MIGRATIONS[N - 1]`. Append only.
const MIGRATIONS: &[&str] = &[
    // 1: operations and API keys. Timestamps are Unix nanoseconds (bigint):
    // timestamptz keeps microseconds, and Azure prints 100 ns ticks.
    "CREATE TABLE operations (
        id uuid PRIMARY KEY,
        scope text NOT NULL,
        kind text NOT NULL,
        state text NOT NULL,
        percent_complete double precision,
        created_at bigint NOT NULL,
        started_at bigint,
        last_action_at bigint NOT NULL,
        finished_at bigint,
        resource_location text,
        details_location text,
        properties jsonb,
        error jsonb,
        version bigint NOT NULL,
        expires_at bigint,
        create_fingerprint text NOT NULL
    );
    CREATE INDEX operations_by_scope ON operations (scope, created_at DESC, id DESC);
    CREATE INDEX operations_by_time ON operations (created_at DESC, id DESC);
    CREATE INDEX operations_expiring ON operations (expires_at) WHERE expires_at IS NOT NULL;
    CREATE TABLE api_keys (
        id text PRIMARY KEY,
        hash text NOT NULL UNIQUE,
        scope text NOT NULL,
        role text NOT NULL,
        name text,
        created_at bigint NOT NULL,
        revoked_at bigint
    );",
    // 2: emulator scripts, and when their next step is due.
    "ALTER TABLE operations ADD COLUMN script jsonb;
    ALTER TABLE operations ADD COLUMN script_due_at bigint;
    CREATE INDEX operations_script_due ON operations (script_due_at) WHERE script_due_at IS NOT NULL;",
    // 3: tombstones of purged operations, so owners get "expired", not "never existed".
    "CREATE TABLE tombstones (
        id uuid PRIMARY KEY,
        scope text NOT NULL,
        kind text NOT NULL,
        forget_at bigint NOT NULL
    );
    CREATE INDEX tombstones_forget ON tombstones (forget_at);",
    // 4: repeatable requests (Repeatability-Request-ID), per caller key.
    "CREATE TABLE repeatable_requests (
        key text PRIMARY KEY,
        fingerprint text NOT NULL,
        response jsonb,
        started_at bigint NOT NULL,
        expires_at bigint NOT NULL
    );
    CREATE INDEX repeatable_requests_expiry ON repeatable_requests (expires_at);",
    // 5: worker leases: attempts (the fencing token), holder, expiry.
    "ALTER TABLE operations ADD COLUMN attempts integer NOT NULL DEFAULT 0;
    ALTER TABLE operations ADD COLUMN lease_owner text;
    ALTER TABLE operations ADD COLUMN lease_expires_at bigint;
    CREATE INDEX operations_claimable ON operations (kind, created_at, id) WHERE state = 'NotStarted';
    CREATE INDEX operations_leased ON operations (lease_expires_at) WHERE lease_expires_at IS NOT NULL;",
    // 6: the change log: one row per committed change, for resumable event streams.
    "CREATE TABLE changes (
        seq bigserial PRIMARY KEY,
        operation_id uuid NOT NULL,
        scope text NOT NULL,
        version bigint NOT NULL,
        at bigint NOT NULL
    );
    CREATE INDEX changes_by_scope ON changes (scope, seq);
    CREATE INDEX changes_by_time ON changes (at);",
    // 7: webhooks and their durable outbox (deliveries), fed from the change log.
    "CREATE TABLE webhooks (
        id text PRIMARY KEY NOT NULL,
        scope text,
        url text NOT NULL,
        secret text NOT NULL,
        all_changes boolean NOT NULL,
        start_seq bigint NOT NULL,
        created_at bigint NOT NULL
    );
    CREATE TABLE webhook_cursor (id integer PRIMARY KEY CHECK (id = 1), seq bigint NOT NULL);
    INSERT INTO webhook_cursor (id, seq) VALUES (1, 0);
    CREATE TABLE deliveries (
        id text PRIMARY KEY NOT NULL,
        webhook_id text NOT NULL,
        operation_id text NOT NULL,
        version bigint NOT NULL,
        seq bigint NOT NULL,
        attempts integer NOT NULL,
        next_at bigint NOT NULL,
        state text NOT NULL,
        last_status integer,
        last_error text,
        created_at bigint NOT NULL
    );
    CREATE INDEX deliveries_due ON deliveries (next_at) WHERE state = 'pending';
    CREATE INDEX deliveries_by_webhook ON deliveries (webhook_id, created_at);",
    // 8: operations by state and kind, kept by triggers in the writing
    // transaction, so the metrics gauges never count the table. Spread over
    // 16 shards per (state, kind) so concurrent writers rarely wait on one row.
    "CREATE TABLE operation_counts (
        state text NOT NULL,
        kind text NOT NULL,
        shard smallint NOT NULL,
        n bigint NOT NULL,
        PRIMARY KEY (state, kind, shard)
    );
    INSERT INTO operation_counts (state, kind, shard, n) SELECT state, kind, 0, count(*) FROM operations GROUP BY state, kind;
    CREATE FUNCTION operation_counts_track() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        slot smallint := floor(random() * 16)::smallint;
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            INSERT INTO operation_counts AS c (state, kind, shard, n) VALUES (OLD.state, OLD.kind, slot, -1)
                ON CONFLICT (state, kind, shard) DO UPDATE SET n = c.n - 1;
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            INSERT INTO operation_counts AS c (state, kind, shard, n) VALUES (NEW.state, NEW.kind, slot, 1)
                ON CONFLICT (state, kind, shard) DO UPDATE SET n = c.n + 1;
        END IF;
        RETURN NULL;
    END $$;
    CREATE TRIGGER operation_counts_insert_delete AFTER INSERT OR DELETE ON operations
        FOR EACH ROW EXECUTE FUNCTION operation_counts_track();
    CREATE TRIGGER operation_counts_update AFTER UPDATE OF state ON operations
        FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION operation_counts_track();",
    // 9: when each key was last used (flushed in batches, not per request).
    "ALTER TABLE api_keys ADD COLUMN last_used_at bigint;",
    // 10: change-log positions, given after commit (see changes.rs): `seq`
    // is taken before commit, so concurrent writers commit out of its
    // order. Logged rows keep their seq as position (event ids and the
    // webhook cursor already handed out stay valid); new positions follow
    // every seq ever taken.
    "ALTER TABLE changes ADD COLUMN position bigint;
    UPDATE changes SET position = seq;
    CREATE SEQUENCE changes_position;
    SELECT setval('changes_position', greatest((SELECT last_value FROM changes_seq_seq), 1));
    CREATE UNIQUE INDEX changes_by_position ON changes (position);
    CREATE INDEX changes_unplaced ON changes (seq) WHERE position IS NULL;
    DROP INDEX changes_by_scope;
    CREATE INDEX changes_by_scope ON changes (scope, position);
    CREATE FUNCTION longrun_place_changes() RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM changes WHERE position IS NULL) THEN
            RETURN;
        END IF;
        PERFORM pg_advisory_xact_lock(7813585269092085249);
        -- A fresh snapshot, taken after the lock: every placer that held it
        -- before has committed, and every change committed by now is seen.
        UPDATE changes AS c SET position = placed.position
        FROM (SELECT unplaced.seq, nextval('changes_position') AS position
              FROM (SELECT seq FROM changes WHERE position IS NULL ORDER BY seq) AS unplaced) AS placed
        WHERE c.seq = placed.seq;
    END $$;",
    // 11: operation counts as appended deltas, one row per statement and
    // (state, kind), folded into `operation_counts` by one node at a time
    // (`longrun_fold_counts`). Writes committed in rounds (batch.rs) touch
    // many counts at once: updating shared rows, two rounds would lock them
    // in opposite orders and deadlock, and every round would wait for the
    // last one's commit on a hot row. Statement triggers with transition
    // tables pay once per round, not once per row. Updates count in their
    // own statement (batch.rs), the only one that updates operations: an
    // update trigger would keep every old and new row of a round.
    "CREATE TABLE operation_count_deltas (state text NOT NULL, kind text NOT NULL, n bigint NOT NULL);
    DROP TRIGGER operation_counts_insert_delete ON operations;
    DROP TRIGGER operation_counts_update ON operations;
    DROP FUNCTION operation_counts_track();
    CREATE FUNCTION operation_counts_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO operation_count_deltas (state, kind, n)
            SELECT state, kind, count(*) FROM new_rows GROUP BY state, kind;
        RETURN NULL;
    END $$;
    CREATE FUNCTION operation_counts_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO operation_count_deltas (state, kind, n)
            SELECT state, kind, -count(*) FROM old_rows GROUP BY state, kind;
        RETURN NULL;
    END $$;
    CREATE TRIGGER operation_counts_inserted AFTER INSERT ON operations
        REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION operation_counts_inserted();
    CREATE TRIGGER operation_counts_deleted AFTER DELETE ON operations
        REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION operation_counts_deleted();
    CREATE FUNCTION longrun_fold_counts() RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_advisory_xact_lock(7813585269092085250);
        WITH moved AS (DELETE FROM operation_count_deltas RETURNING state, kind, n)
        INSERT INTO operation_counts AS c (state, kind, shard, n)
            SELECT state, kind, 0, sum(n) FROM moved GROUP BY state, kind
            ON CONFLICT (state, kind, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
    END $$;",
    // 12: the change log indexes only what its readers and its purge use.
    // A row is written once with no position and placed once (an update
    // that writes a new row version): indexes on `position` skip the rows
    // still unplaced, and the purge walks `seq` (the primary key) from the
    // oldest row instead of an index on `at`, so a write pays two index
    // entries, not five.
    "DROP INDEX changes_by_time;
    DROP INDEX changes_by_position;
    CREATE UNIQUE INDEX changes_by_position ON changes (position) WHERE position IS NOT NULL;
    DROP INDEX changes_by_scope;
    CREATE INDEX changes_by_scope ON changes (scope, position) WHERE position IS NOT NULL;",
    // 13: the W3C traceparent of the request that created each operation.
    "ALTER TABLE operations ADD COLUMN traceparent text;",
];

/// Arbitrary but fixed: the advisory lock every longrun node takes to migrate.
const MIGRATION_LOCK: i64 = 0x6c6f_6e67_7275_6e00; // "longrun\0"

/// Brings the schema up to date; refuses a schema newer than this build.
pub async fn migrate(client: &mut Object) -> anyhow::Result<()> {
    client.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})")).await?;
    let outcome = apply_pending(client).await;
    client.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})")).await?;
    outcome
}

async fn apply_pending(client: &mut Object) -> anyhow::Result<()> {
    client
        .batch_execute("CREATE TABLE IF NOT EXISTS longrun_schema (version integer NOT NULL)")
        .await
        .context("cannot create the schema version table")?;
    let found: i32 =
        client.query_opt("SELECT version FROM longrun_schema", &[]).await?.map(|row| row.get(0)).unwrap_or(0);
    let current = MIGRATIONS.len() as i32;
    if found > current {
        bail!(
            "the database has schema version {found}, newer than this longrun understands ({current}); run the newer longrun"
        );
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = index as i32 + 1;
        let tx = client.transaction().await?;
        tx.batch_execute(sql).await.with_context(|| format!("schema migration {version} failed"))?;
        tx.execute("DELETE FROM longrun_schema", &[]).await?;
        tx.execute("INSERT INTO longrun_schema (version) VALUES ($1)", &[&version]).await?;
        tx.commit().await?;
    }
    Ok(())
}
