//! Row ⇄ model mapping for PostgreSQL. The only place that knows column order.

use serde_json::Value;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::model::{ApiKey, KeyScope, Kind, Lease, Operation, OperationId, Role, Scope, State, Timestamp};

/// The columns `operation_from_row` reads, in order.
pub const OPERATION_COLUMNS: &str = "id, scope, kind, state, percent_complete, created_at, started_at, \
     last_action_at, finished_at, resource_location, details_location, properties, error, version, \
     expires_at, create_fingerprint, script, script_due_at, attempts, lease_owner, lease_expires_at";

/// The columns `key_from_row` reads, in order.
pub const KEY_COLUMNS: &str = "id, hash, scope, role, name, created_at, revoked_at";

fn time(row: &Row, index: usize) -> Option<Timestamp> {
    row.get::<_, Option<i64>>(index).map(Timestamp::from_unix_nanos)
}

/// Builds an `Operation` from a row selected with `OPERATION_COLUMNS`.
pub fn operation_from_row(row: &Row) -> anyhow::Result<Operation> {
    let scope: &str = row.get(1);
    let kind: &str = row.get(2);
    let state: &str = row.get(3);
    let properties: Option<Value> = row.get(11);
    let error: Option<Value> = row.get(12);
    let script: Option<Value> = row.get(16);
    Ok(Operation {
        id: OperationId::from_uuid(row.get::<_, Uuid>(0)),
        scope: Scope::parse(scope).map_err(anyhow::Error::msg)?,
        kind: Kind::parse(kind).map_err(anyhow::Error::msg)?,
        state: State::parse(state).ok_or_else(|| anyhow::anyhow!("bad state {state}"))?,
        percent_complete: row.get(4),
        created_at: Timestamp::from_unix_nanos(row.get(5)),
        started_at: time(row, 6),
        last_action_at: Timestamp::from_unix_nanos(row.get(7)),
        finished_at: time(row, 8),
        resource_location: row.get(9),
        details_location: row.get(10),
        properties: properties
            .map(|p| match p {
                Value::Object(map) => Ok(map),
                other => Err(anyhow::anyhow!("properties is not an object: {other}")),
            })
            .transpose()?,
        error: error.map(serde_json::from_value).transpose()?,
        version: row.get(13),
        expires_at: time(row, 14),
        create_fingerprint: row.get(15),
        script: script.map(serde_json::from_value).transpose()?,
        attempts: row.get::<_, i32>(18) as u32,
        lease: match (row.get::<_, Option<String>>(19), time(row, 20)) {
            (Some(owner), Some(expires_at)) => Some(Lease { owner, expires_at }),
            _ => None,
        },
    })
}

/// The values for `OPERATION_COLUMNS`, in order, as `$1..$21`.
pub fn operation_params(op: &Operation) -> Vec<Box<dyn ToSql + Sync + Send>> {
    vec![
        Box::new(op.id.uuid()),
        Box::new(op.scope.to_string()),
        Box::new(op.kind.to_string()),
        Box::new(op.state.as_str()),
        Box::new(op.percent_complete),
        Box::new(op.created_at.unix_nanos()),
        Box::new(op.started_at.map(Timestamp::unix_nanos)),
        Box::new(op.last_action_at.unix_nanos()),
        Box::new(op.finished_at.map(Timestamp::unix_nanos)),
        Box::new(op.resource_location.clone()),
        Box::new(op.details_location.clone()),
        Box::new(op.properties.clone().map(Value::Object)),
        Box::new(op.error.as_ref().map(|e| serde_json::to_value(e).expect("error struct"))),
        Box::new(op.version),
        Box::new(op.expires_at.map(Timestamp::unix_nanos)),
        Box::new(op.create_fingerprint.clone()),
        Box::new(op.script.as_ref().map(|s| serde_json::to_value(s).expect("script struct"))),
        Box::new(op.script_due_at().map(Timestamp::unix_nanos)),
        Box::new(op.attempts as i32),
        Box::new(op.lease.as_ref().map(|l| l.owner.clone())),
        Box::new(op.lease.as_ref().map(|l| l.expires_at.unix_nanos())),
    ]
}

/// The values of an update: id, the mutable columns, then the expected version.
pub fn update_params(op: &Operation, expected_version: i64) -> Vec<Box<dyn ToSql + Sync + Send>> {
    let mut all = operation_params(op);
    // Keep id (0) and the columns a change may touch (3, 4, 6..=14, 16..=20);
    // drop scope, kind, created_at and the fingerprint, which never change.
    let keep = [0, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 18, 19, 20];
    let mut kept: Vec<Box<dyn ToSql + Sync + Send>> = Vec::with_capacity(keep.len() + 1);
    for (index, param) in all.drain(..).enumerate() {
        if keep.contains(&index) {
            kept.push(param);
        }
    }
    kept.push(Box::new(expected_version));
    kept
}

/// Borrows boxed parameters the way `tokio_postgres` wants them.
pub fn as_params(params: &[Box<dyn ToSql + Sync + Send>]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect()
}

/// Builds an `ApiKey` from a row selected with `KEY_COLUMNS`.
pub fn key_from_row(row: &Row) -> anyhow::Result<ApiKey> {
    let scope: &str = row.get(2);
    let role: &str = row.get(3);
    Ok(ApiKey {
        id: row.get(0),
        hash: row.get(1),
        scope: KeyScope::parse(scope).map_err(anyhow::Error::msg)?,
        role: Role::parse(role).ok_or_else(|| anyhow::anyhow!("bad role {role}"))?,
        name: row.get(4),
        created_at: Timestamp::from_unix_nanos(row.get(5)),
        revoked_at: time(row, 6),
    })
}
