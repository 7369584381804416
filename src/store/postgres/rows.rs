//! Row ⇄ model mapping for PostgreSQL. The only place that knows column order.

use serde_json::Value;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::model::{ApiKey, KeyScope, Kind, Lease, Operation, OperationId, Role, Scope, State, Timestamp};

/// The columns `operation_from_row` reads, in order.
pub const OPERATION_COLUMNS: &str = "id, scope, kind, state, percent_complete, created_at, started_at, \
     last_action_at, finished_at, resource_location, details_location, properties, error, version, \
     expires_at, create_fingerprint, script, script_due_at, attempts, lease_owner, lease_expires_at, \
     traceparent";

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
        traceparent: row.get(21),
    })
}

/// Operations as one array per column, in `OPERATION_COLUMNS` order: the
/// parameters of a statement that writes many rows at once (`unnest`).
#[derive(Default)]
pub struct OperationColumns {
    id: Vec<Uuid>,
    scope: Vec<String>,
    kind: Vec<String>,
    state: Vec<&'static str>,
    percent_complete: Vec<Option<f64>>,
    created_at: Vec<i64>,
    started_at: Vec<Option<i64>>,
    last_action_at: Vec<i64>,
    finished_at: Vec<Option<i64>>,
    resource_location: Vec<Option<String>>,
    details_location: Vec<Option<String>>,
    properties: Vec<Option<Value>>,
    error: Vec<Option<Value>>,
    version: Vec<i64>,
    expires_at: Vec<Option<i64>>,
    create_fingerprint: Vec<String>,
    script: Vec<Option<Value>>,
    script_due_at: Vec<Option<i64>>,
    attempts: Vec<i32>,
    lease_owner: Vec<Option<String>>,
    lease_expires_at: Vec<Option<i64>>,
    traceparent: Vec<Option<String>>,
    /// For updates: the version each row must still have.
    expected_version: Vec<i64>,
}

/// The SQL types of `OperationColumns::all`, in order, for `unnest`.
pub const OPERATION_ARRAY_TYPES: [&str; 22] = [
    "uuid[]", "text[]", "text[]", "text[]", "float8[]", "int8[]", "int8[]", "int8[]", "int8[]", "text[]", "text[]",
    "jsonb[]", "jsonb[]", "int8[]", "int8[]", "text[]", "jsonb[]", "int8[]", "int4[]", "text[]", "int8[]", "text[]",
];

impl OperationColumns {
    /// Appends one operation (and, for an update, the version it replaces).
    pub fn push(&mut self, op: &Operation, expected_version: i64) {
        self.id.push(op.id.uuid());
        self.scope.push(op.scope.to_string());
        self.kind.push(op.kind.to_string());
        self.state.push(op.state.as_str());
        self.percent_complete.push(op.percent_complete);
        self.created_at.push(op.created_at.unix_nanos());
        self.started_at.push(op.started_at.map(Timestamp::unix_nanos));
        self.last_action_at.push(op.last_action_at.unix_nanos());
        self.finished_at.push(op.finished_at.map(Timestamp::unix_nanos));
        self.resource_location.push(op.resource_location.clone());
        self.details_location.push(op.details_location.clone());
        self.properties.push(op.properties.clone().map(Value::Object));
        self.error.push(op.error.as_ref().map(|e| serde_json::to_value(e).expect("error struct")));
        self.version.push(op.version);
        self.expires_at.push(op.expires_at.map(Timestamp::unix_nanos));
        self.create_fingerprint.push(op.create_fingerprint.clone());
        self.script.push(op.script.as_ref().map(|s| serde_json::to_value(s).expect("script struct")));
        self.script_due_at.push(op.script_due_at().map(Timestamp::unix_nanos));
        self.attempts.push(op.attempts as i32);
        self.lease_owner.push(op.lease.as_ref().map(|l| l.owner.clone()));
        self.lease_expires_at.push(op.lease.as_ref().map(|l| l.expires_at.unix_nanos()));
        self.traceparent.push(op.traceparent.clone());
        self.expected_version.push(expected_version);
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.id.is_empty()
    }

    /// Every column, in `OPERATION_COLUMNS` order (`$1..$22`).
    pub fn all(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![
            &self.id,
            &self.scope,
            &self.kind,
            &self.state,
            &self.percent_complete,
            &self.created_at,
            &self.started_at,
            &self.last_action_at,
            &self.finished_at,
            &self.resource_location,
            &self.details_location,
            &self.properties,
            &self.error,
            &self.version,
            &self.expires_at,
            &self.create_fingerprint,
            &self.script,
            &self.script_due_at,
            &self.attempts,
            &self.lease_owner,
            &self.lease_expires_at,
            &self.traceparent,
        ]
    }

    /// Every column, then the expected versions (`$23`).
    pub fn with_expected_versions(&self) -> Vec<&(dyn ToSql + Sync)> {
        let mut all = self.all();
        all.push(&self.expected_version);
        all
    }
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
