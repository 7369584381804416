//! Row ⇄ model mapping for SQLite. The only place that knows column order.

use rusqlite::{Row, ToSql, types::Type};

use crate::model::{ApiKey, KeyScope, Kind, Lease, Operation, OperationId, Role, Scope, State, Timestamp};

/// The columns `operation_from_row` reads, in order.
pub const OPERATION_COLUMNS: &str = "id, scope, kind, state, percent_complete, created_at, started_at, \
     last_action_at, finished_at, resource_location, details_location, properties, error, version, \
     expires_at, create_fingerprint, script, script_due_at, attempts, lease_owner, lease_expires_at, \
     traceparent";

/// The columns `key_from_row` reads, in order.
pub const KEY_COLUMNS: &str = "id, hash, scope, role, name, created_at, revoked_at";

fn bad(index: usize, what: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, Type::Text, what.to_string().into())
}

fn json<T: serde::de::DeserializeOwned>(row: &Row, index: usize) -> rusqlite::Result<Option<T>> {
    let text: Option<String> = row.get(index)?;
    text.map(|t| serde_json::from_str(&t).map_err(|e| bad(index, e.to_string()))).transpose()
}

fn time(row: &Row, index: usize) -> rusqlite::Result<Option<Timestamp>> {
    Ok(row.get::<_, Option<i64>>(index)?.map(Timestamp::from_unix_nanos))
}

/// Builds an `Operation` from a row selected with `OPERATION_COLUMNS`.
pub fn operation_from_row(row: &Row) -> rusqlite::Result<Operation> {
    let id: String = row.get(0)?;
    let scope: String = row.get(1)?;
    let kind: String = row.get(2)?;
    let state: String = row.get(3)?;
    Ok(Operation {
        id: OperationId::parse(&id).ok_or_else(|| bad(0, format!("bad id {id}")))?,
        scope: Scope::parse(&scope).map_err(|e| bad(1, e))?,
        kind: Kind::parse(&kind).map_err(|e| bad(2, e))?,
        state: State::parse(&state).ok_or_else(|| bad(3, format!("bad state {state}")))?,
        percent_complete: row.get(4)?,
        created_at: Timestamp::from_unix_nanos(row.get(5)?),
        started_at: time(row, 6)?,
        last_action_at: Timestamp::from_unix_nanos(row.get(7)?),
        finished_at: time(row, 8)?,
        resource_location: row.get(9)?,
        details_location: row.get(10)?,
        properties: json(row, 11)?,
        error: json(row, 12)?,
        version: row.get(13)?,
        expires_at: time(row, 14)?,
        create_fingerprint: row.get(15)?,
        script: json(row, 16)?,
        attempts: row.get(18)?,
        lease: match (row.get::<_, Option<String>>(19)?, time(row, 20)?) {
            (Some(owner), Some(expires_at)) => Some(Lease { owner, expires_at }),
            _ => None,
        },
        traceparent: row.get(21)?,
    })
}

/// The values for `OPERATION_COLUMNS`, in order, as `?1..?22`.
pub fn operation_params(op: &Operation) -> Vec<Box<dyn ToSql>> {
    let to_json = |v: Option<String>| v;
    vec![
        Box::new(op.id.to_string()),
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
        Box::new(to_json(op.properties.as_ref().map(|p| serde_json::to_string(p).expect("JSON map")))),
        Box::new(to_json(op.error.as_ref().map(|e| serde_json::to_string(e).expect("error struct")))),
        Box::new(op.version),
        Box::new(op.expires_at.map(Timestamp::unix_nanos)),
        Box::new(op.create_fingerprint.clone()),
        Box::new(op.script.as_ref().map(|s| serde_json::to_string(s).expect("script struct"))),
        Box::new(op.script_due_at().map(Timestamp::unix_nanos)),
        Box::new(op.attempts),
        Box::new(op.lease.as_ref().map(|l| l.owner.clone())),
        Box::new(op.lease.as_ref().map(|l| l.expires_at.unix_nanos())),
        Box::new(op.traceparent.clone()),
    ]
}

/// Builds an `ApiKey` from a row selected with `KEY_COLUMNS`.
pub fn key_from_row(row: &Row) -> rusqlite::Result<ApiKey> {
    let scope: String = row.get(2)?;
    let role: String = row.get(3)?;
    Ok(ApiKey {
        id: row.get(0)?,
        hash: row.get(1)?,
        scope: KeyScope::parse(&scope).map_err(|e| bad(2, e))?,
        role: Role::parse(&role).ok_or_else(|| bad(3, format!("bad role {role}")))?,
        name: row.get(4)?,
        created_at: Timestamp::from_unix_nanos(row.get(5)?),
        revoked_at: time(row, 6)?,
    })
}
