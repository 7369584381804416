//! The webhook tables on SQLite: registrations, the dispatcher's cursor and
//! the delivery outbox. Writes go through the writer thread like all others.

use rusqlite::{Connection, Row, params};

use async_trait::async_trait;

use super::SqliteStore;
use super::writer::Write;
use crate::model::{Delivery, DeliveryState, OperationId, Scope, Timestamp, Webhook};
use crate::store::{StoreError, WebhookStore};

const WEBHOOK_COLUMNS: &str = "id, scope, url, secret, all_changes, start_seq, created_at";
const DELIVERY_COLUMNS: &str =
    "id, webhook_id, operation_id, version, seq, attempts, next_at, state, last_status, last_error, created_at";

fn bad(index: usize, what: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, what.to_string().into())
}

fn webhook_from_row(row: &Row) -> rusqlite::Result<Webhook> {
    let scope: Option<String> = row.get(1)?;
    Ok(Webhook {
        id: row.get(0)?,
        scope: scope.map(|s| Scope::parse(&s).map_err(|e| bad(1, e))).transpose()?,
        url: row.get(2)?,
        secret: row.get(3)?,
        all_changes: row.get(4)?,
        start_seq: row.get(5)?,
        created_at: Timestamp::from_unix_nanos(row.get(6)?),
    })
}

fn delivery_from_row(row: &Row) -> rusqlite::Result<Delivery> {
    let operation: String = row.get(2)?;
    let state: String = row.get(7)?;
    Ok(Delivery {
        id: row.get(0)?,
        webhook_id: row.get(1)?,
        operation_id: OperationId::parse(&operation).ok_or_else(|| bad(2, operation.clone()))?,
        version: row.get(3)?,
        seq: row.get(4)?,
        attempts: row.get(5)?,
        next_at: Timestamp::from_unix_nanos(row.get(6)?),
        state: DeliveryState::parse(&state).ok_or_else(|| bad(7, state.clone()))?,
        last_status: row.get(8)?,
        last_error: row.get(9)?,
        created_at: Timestamp::from_unix_nanos(row.get(10)?),
    })
}

fn write_delivery(conn: &Connection, d: &Delivery) -> rusqlite::Result<usize> {
    conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO deliveries ({DELIVERY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
    ))?
    .execute(params![
        d.id,
        d.webhook_id,
        d.operation_id.to_string(),
        d.version,
        d.seq,
        d.attempts,
        d.next_at.unix_nanos(),
        d.state.as_str(),
        d.last_status,
        d.last_error,
        d.created_at.unix_nanos()
    ])
}

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn webhook_cursor(&self) -> Result<i64, StoreError> {
        self.sqlite_scalar("SELECT seq FROM webhook_cursor WHERE id = 1").await
    }

    async fn next_delivery_due(&self) -> Result<Option<Timestamp>, StoreError> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT next_at FROM deliveries WHERE state = 'pending' ORDER BY next_at LIMIT 1")?;
            let mut rows = stmt.query_map([], |row| row.get::<_, i64>(0))?;
            rows.next().transpose().map(|at| at.map(Timestamp::from_unix_nanos))
        })
        .await
    }

    async fn create_webhook(&self, hook: &Webhook) -> Result<(), StoreError> {
        let hook = hook.clone();
        self.exec(move |conn| {
            conn.prepare_cached(&format!(
                "INSERT INTO webhooks ({WEBHOOK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
            ))?
            .execute(params![
                hook.id,
                hook.scope.as_ref().map(|s| s.to_string()),
                hook.url,
                hook.secret,
                hook.all_changes,
                hook.start_seq,
                hook.created_at.unix_nanos()
            ])?;
            Ok(1)
        })
        .await
        .map(drop)
    }

    async fn list_webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare_cached(&format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks ORDER BY created_at"))?;
            let rows = stmt.query_map([], webhook_from_row)?;
            rows.collect()
        })
        .await
    }

    async fn delete_webhook(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        let removed = self
            .exec(move |conn| {
                conn.prepare_cached("DELETE FROM deliveries WHERE webhook_id = ?1")?.execute([&id])?;
                Ok(conn.prepare_cached("DELETE FROM webhooks WHERE id = ?1")?.execute([&id])? as u64)
            })
            .await?;
        Ok(removed == 1)
    }

    async fn enqueue_deliveries(&self, from: i64, to: i64, deliveries: &[Delivery]) -> Result<bool, StoreError> {
        let deliveries = deliveries.to_vec();
        let moved = self
            .exec(move |conn| {
                let moved = conn
                    .prepare_cached("UPDATE webhook_cursor SET seq = ?2 WHERE id = 1 AND seq = ?1")?
                    .execute(params![from, to])?;
                if moved == 1 {
                    for delivery in &deliveries {
                        write_delivery(conn, delivery)?;
                    }
                }
                Ok(moved as u64)
            })
            .await?;
        Ok(moved == 1)
    }

    async fn due_deliveries(&self, now: Timestamp, limit: u32) -> Result<Vec<Delivery>, StoreError> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE state = 'pending' AND next_at <= ?1 ORDER BY next_at LIMIT ?2"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![now.unix_nanos(), limit], delivery_from_row)?;
            rows.collect()
        })
        .await
    }

    async fn claim_delivery(&self, id: &str, seen: Timestamp, until: Timestamp) -> Result<bool, StoreError> {
        let id = id.to_owned();
        let claimed = self
            .exec(move |conn| {
                let n = conn
                    .prepare_cached(
                        "UPDATE deliveries SET next_at = ?3 WHERE id = ?1 AND next_at = ?2 AND state = 'pending'",
                    )?
                    .execute(params![id, seen.unix_nanos(), until.unix_nanos()])?;
                Ok(n as u64)
            })
            .await?;
        Ok(claimed == 1)
    }

    async fn update_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
        let delivery = delivery.clone();
        self.exec(move |conn| Ok(write_delivery(conn, &delivery)? as u64)).await.map(drop)
    }

    async fn list_deliveries(&self, webhook_id: &str, limit: u32) -> Result<Vec<Delivery>, StoreError> {
        let webhook_id = webhook_id.to_owned();
        self.read(move |conn| {
            let sql = format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE webhook_id = ?1 ORDER BY created_at DESC, seq DESC LIMIT ?2"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![webhook_id, limit], delivery_from_row)?;
            rows.collect()
        })
        .await
    }
}

impl SqliteStore {
    pub(super) async fn sqlite_scalar(&self, sql: &'static str) -> Result<i64, StoreError> {
        self.read(move |conn| {
            conn.prepare_cached(sql)?.query_row([], |row| row.get::<_, Option<i64>>(0)).map(|v| v.unwrap_or(0))
        })
        .await
    }

    /// Runs a write closure on the writer thread, inside its batch.
    pub(super) async fn exec(
        &self,
        run: impl Fn(&Connection) -> Result<u64, StoreError> + Send + 'static,
    ) -> Result<u64, StoreError> {
        self.write(Write::Exec(Box::new(run))).await
    }
}
