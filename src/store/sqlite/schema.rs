//! The SQLite schema, as numbered migrations. `PRAGMA user_version` records
//! how many have run; each runs once, in its own transaction.

use anyhow::{Context, bail};
use rusqlite::Connection;

/// Migration N is `MIGRATIONS[N - 1]`. Append only: never edit a released one.
const MIGRATIONS: &[&str] = &[
    // 1: operations and API keys.
    "CREATE TABLE operations (
        id TEXT PRIMARY KEY NOT NULL,
        scope TEXT NOT NULL,
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        percent_complete REAL,
        created_at INTEGER NOT NULL,
        started_at INTEGER,
        last_action_at INTEGER NOT NULL,
        finished_at INTEGER,
        resource_location TEXT,
        details_location TEXT,
        properties TEXT,
        error TEXT,
        version INTEGER NOT NULL,
        expires_at INTEGER,
        create_fingerprint TEXT NOT NULL
    ) STRICT;
    CREATE INDEX operations_by_scope ON operations (scope, created_at DESC, id DESC);
    CREATE INDEX operations_by_time ON operations (created_at DESC, id DESC);
    CREATE INDEX operations_expiring ON operations (expires_at) WHERE expires_at IS NOT NULL;
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY NOT NULL,
        hash TEXT NOT NULL UNIQUE,
        scope TEXT NOT NULL,
        role TEXT NOT NULL,
        name TEXT,
        created_at INTEGER NOT NULL,
        revoked_at INTEGER
    ) STRICT;",
    // 2: emulator scripts, and when their next step is due.
    "ALTER TABLE operations ADD COLUMN script TEXT;
    ALTER TABLE operations ADD COLUMN script_due_at INTEGER;
    CREATE INDEX operations_script_due ON operations (script_due_at) WHERE script_due_at IS NOT NULL;",
    // 3: tombstones of purged operations, so owners get "expired", not "never existed".
    "CREATE TABLE tombstones (
        id TEXT PRIMARY KEY NOT NULL,
        scope TEXT NOT NULL,
        kind TEXT NOT NULL,
        forget_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX tombstones_forget ON tombstones (forget_at);",
    // 4: repeatable requests (Repeatability-Request-ID), per caller key.
    "CREATE TABLE repeatable_requests (
        key TEXT PRIMARY KEY NOT NULL,
        fingerprint TEXT NOT NULL,
        response TEXT,
        started_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX repeatable_requests_expiry ON repeatable_requests (expires_at);",
    // 5: worker leases: attempts (the fencing token), holder, expiry.
    "ALTER TABLE operations ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE operations ADD COLUMN lease_owner TEXT;
    ALTER TABLE operations ADD COLUMN lease_expires_at INTEGER;
    CREATE INDEX operations_claimable ON operations (kind, created_at, id) WHERE state = 'NotStarted';
    CREATE INDEX operations_leased ON operations (lease_expires_at) WHERE lease_expires_at IS NOT NULL;",
    // 6: the change log: one row per committed change, for resumable event streams.
    "CREATE TABLE changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        operation_id TEXT NOT NULL,
        scope TEXT NOT NULL,
        version INTEGER NOT NULL,
        at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX changes_by_scope ON changes (scope, seq);
    CREATE INDEX changes_by_time ON changes (at);",
    // 7: webhooks and their durable outbox (deliveries), fed from the change log.
    "CREATE TABLE webhooks (
        id TEXT PRIMARY KEY NOT NULL,
        scope TEXT,
        url TEXT NOT NULL,
        secret TEXT NOT NULL,
        all_changes INTEGER NOT NULL,
        start_seq INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE webhook_cursor (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL) STRICT;
    INSERT INTO webhook_cursor (id, seq) VALUES (1, 0);
    CREATE TABLE deliveries (
        id TEXT PRIMARY KEY NOT NULL,
        webhook_id TEXT NOT NULL,
        operation_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        attempts INTEGER NOT NULL,
        next_at INTEGER NOT NULL,
        state TEXT NOT NULL,
        last_status INTEGER,
        last_error TEXT,
        created_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX deliveries_due ON deliveries (next_at) WHERE state = 'pending';
    CREATE INDEX deliveries_by_webhook ON deliveries (webhook_id, created_at);",
    // 8: operations by state and kind, kept by triggers in the writing
    // transaction, so the metrics gauges never count the table.
    "CREATE TABLE operation_counts (
        state TEXT NOT NULL,
        kind TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (state, kind)
    ) STRICT, WITHOUT ROWID;
    INSERT INTO operation_counts (state, kind, n) SELECT state, kind, count(*) FROM operations GROUP BY state, kind;
    CREATE TRIGGER operation_counts_insert AFTER INSERT ON operations BEGIN
        INSERT INTO operation_counts (state, kind, n) VALUES (NEW.state, NEW.kind, 1)
            ON CONFLICT (state, kind) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER operation_counts_update AFTER UPDATE OF state ON operations WHEN OLD.state <> NEW.state BEGIN
        UPDATE operation_counts SET n = n - 1 WHERE state = OLD.state AND kind = OLD.kind;
        INSERT INTO operation_counts (state, kind, n) VALUES (NEW.state, NEW.kind, 1)
            ON CONFLICT (state, kind) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER operation_counts_delete AFTER DELETE ON operations BEGIN
        UPDATE operation_counts SET n = n - 1 WHERE state = OLD.state AND kind = OLD.kind;
    END;",
    // 9: when each key was last used (flushed in batches, not per request).
    "ALTER TABLE api_keys ADD COLUMN last_used_at INTEGER;",
    // 10: the W3C traceparent of the request that created each operation.
    "ALTER TABLE operations ADD COLUMN traceparent TEXT;",
];

/// The schema version this build writes.
pub const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database up to `CURRENT_VERSION`; refuses a newer one.
/// Whether `migrate` has anything to do (a new file, or an older schema).
pub fn pending(conn: &Connection) -> rusqlite::Result<bool> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    Ok(found < CURRENT_VERSION)
}

pub fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if found > CURRENT_VERSION {
        bail!(
            "the database has schema version {found}, newer than this longrun understands \
             ({CURRENT_VERSION}); run the newer longrun, or restore a backup made by this version"
        );
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = index as i64 + 1;
        let tx = conn.transaction()?;
        tx.execute_batch(sql).with_context(|| format!("schema migration {version} failed"))?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
    }
    Ok(())
}
