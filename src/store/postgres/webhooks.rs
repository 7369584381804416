//! The webhook tables on PostgreSQL: registrations, the dispatcher's cursor
//! and the delivery outbox.

use tokio_postgres::Row;

use async_trait::async_trait;

use super::PostgresStore;
use crate::model::{Delivery, DeliveryState, OperationId, Scope, Timestamp, Webhook};
use crate::store::{StoreError, WebhookStore};

const WEBHOOK_COLUMNS: &str = "id, scope, url, secret, all_changes, start_seq, created_at";
const DELIVERY_COLUMNS: &str =
    "id, webhook_id, operation_id, version, seq, attempts, next_at, state, last_status, last_error, created_at";
const UPSERT_DELIVERY: &str = "INSERT INTO deliveries (id, webhook_id, operation_id, version, seq, attempts, next_at, \
     state, last_status, last_error, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
     ON CONFLICT (id) DO UPDATE SET attempts = EXCLUDED.attempts, next_at = EXCLUDED.next_at, state = EXCLUDED.state, \
     last_status = EXCLUDED.last_status, last_error = EXCLUDED.last_error";

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Other(anyhow::anyhow!("stored webhook data: {what}"))
}

fn webhook_from_row(row: &Row) -> Result<Webhook, StoreError> {
    let scope: Option<String> = row.get(1);
    Ok(Webhook {
        id: row.get(0),
        scope: scope.map(|s| Scope::parse(&s).map_err(corrupt)).transpose()?,
        url: row.get(2),
        secret: row.get(3),
        all_changes: row.get(4),
        start_seq: row.get(5),
        created_at: Timestamp::from_unix_nanos(row.get(6)),
    })
}

fn delivery_from_row(row: &Row) -> Result<Delivery, StoreError> {
    let operation: String = row.get(2);
    let state: String = row.get(7);
    Ok(Delivery {
        id: row.get(0),
        webhook_id: row.get(1),
        operation_id: OperationId::parse(&operation).ok_or_else(|| corrupt(operation.clone()))?,
        version: row.get(3),
        seq: row.get(4),
        attempts: row.get::<_, i32>(5) as u32,
        next_at: Timestamp::from_unix_nanos(row.get(6)),
        state: DeliveryState::parse(&state).ok_or_else(|| corrupt(state.clone()))?,
        last_status: row.get::<_, Option<i32>>(8).map(|s| s as u16),
        last_error: row.get(9),
        created_at: Timestamp::from_unix_nanos(row.get(10)),
    })
}

async fn upsert(client: &impl tokio_postgres::GenericClient, d: &Delivery) -> Result<(), StoreError> {
    client
        .execute(
            UPSERT_DELIVERY,
            &[
                &d.id,
                &d.webhook_id,
                &d.operation_id.to_string(),
                &d.version,
                &d.seq,
                &(d.attempts as i32),
                &d.next_at.unix_nanos(),
                &d.state.as_str(),
                &d.last_status.map(i32::from),
                &d.last_error,
                &d.created_at.unix_nanos(),
            ],
        )
        .await?;
    Ok(())
}

#[async_trait]
impl WebhookStore for PostgresStore {
    async fn webhook_cursor(&self) -> Result<i64, StoreError> {
        self.pg_scalar("SELECT seq FROM webhook_cursor WHERE id = 1").await
    }

    async fn next_delivery_due(&self) -> Result<Option<Timestamp>, StoreError> {
        self.with(async |client| {
            let sql = "SELECT next_at FROM deliveries WHERE state = 'pending' ORDER BY next_at LIMIT 1";
            let statement = client.prepare_cached(sql).await?;
            let row = client.query_opt(&statement, &[]).await?;
            Ok(row.map(|row| Timestamp::from_unix_nanos(row.get(0))))
        })
        .await
    }

    async fn create_webhook(&self, hook: &Webhook) -> Result<(), StoreError> {
        let scope = hook.scope.as_ref().map(|s| s.to_string());
        self.with(async |client| {
            client
                .execute(
                    &format!("INSERT INTO webhooks ({WEBHOOK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"),
                    &[
                        &hook.id,
                        &scope,
                        &hook.url,
                        &hook.secret,
                        &hook.all_changes,
                        &hook.start_seq,
                        &hook.created_at.unix_nanos(),
                    ],
                )
                .await?;
            Ok(())
        })
        .await
    }

    async fn list_webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        self.with(async |client| {
            let rows =
                client.query(&format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks ORDER BY created_at"), &[]).await?;
            rows.iter().map(webhook_from_row).collect()
        })
        .await
    }

    async fn delete_webhook(&self, id: &str) -> Result<bool, StoreError> {
        self.with(async |client| {
            let sql = "WITH gone AS (DELETE FROM webhooks WHERE id = $1 RETURNING id), \
                       dropped AS (DELETE FROM deliveries WHERE webhook_id = $1) SELECT count(*) FROM gone";
            let row = client.query_one(sql, &[&id]).await?;
            Ok(row.get::<_, i64>(0) == 1)
        })
        .await
    }

    async fn enqueue_deliveries(&self, from: i64, to: i64, deliveries: &[Delivery]) -> Result<bool, StoreError> {
        let work = async {
            let mut client = self.pool.get().await.map_err(|e| StoreError::Unavailable(format!("PostgreSQL: {e}")))?;
            let tx = client.transaction().await?;
            let moved =
                tx.execute("UPDATE webhook_cursor SET seq = $2 WHERE id = 1 AND seq = $1", &[&from, &to]).await?;
            if moved != 1 {
                return Ok(false); // another node got there first; dropping `tx` rolls back
            }
            for delivery in deliveries {
                upsert(&*tx, delivery).await?;
            }
            tx.commit().await?;
            Ok(true)
        };
        tokio::time::timeout(super::CALL_TIMEOUT, work)
            .await
            .map_err(|_| StoreError::Unavailable("PostgreSQL did not answer in time".into()))?
    }

    async fn due_deliveries(&self, now: Timestamp, limit: u32) -> Result<Vec<Delivery>, StoreError> {
        self.with(async |client| {
            let sql = format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE state = 'pending' AND next_at <= $1 ORDER BY next_at LIMIT $2"
            );
            let rows = client.query(&sql, &[&now.unix_nanos(), &i64::from(limit)]).await?;
            rows.iter().map(delivery_from_row).collect()
        })
        .await
    }

    async fn claim_delivery(&self, id: &str, seen: Timestamp, until: Timestamp) -> Result<bool, StoreError> {
        self.with(async |client| {
            let n = client
                .execute(
                    "UPDATE deliveries SET next_at = $3 WHERE id = $1 AND next_at = $2 AND state = 'pending'",
                    &[&id, &seen.unix_nanos(), &until.unix_nanos()],
                )
                .await?;
            Ok(n == 1)
        })
        .await
    }

    async fn update_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
        self.with(async |client| upsert(&***client, delivery).await).await
    }

    async fn list_deliveries(&self, webhook_id: &str, limit: u32) -> Result<Vec<Delivery>, StoreError> {
        self.with(async |client| {
            let sql = format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE webhook_id = $1 ORDER BY created_at DESC, seq DESC LIMIT $2"
            );
            let rows = client.query(&sql, &[&webhook_id, &i64::from(limit)]).await?;
            rows.iter().map(delivery_from_row).collect()
        })
        .await
    }
}

impl PostgresStore {
    pub(super) async fn pg_scalar(&self, sql: &'static str) -> Result<i64, StoreError> {
        self.with(async |client| {
            let row = client.query_one(sql, &[]).await?;
            Ok(row.get::<_, Option<i64>>(0).unwrap_or(0))
        })
        .await
    }
}
