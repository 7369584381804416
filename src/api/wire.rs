//! Native `/v1` wire types: camelCase JSON, serde only.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::model::{Operation, OperationError, ScriptStep};

/// `POST /v1/operations` body.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = Longrun::CreateOperation)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateOperation {
    /// Owner scope: `tenants/{uuid}`, `projects/{name}` or `accounts/{name}`.
    #[schema(
        pattern = "^(tenants/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|projects/[a-zA-Z0-9][a-zA-Z0-9_.-]{2,62}|accounts/[a-zA-Z0-9][a-zA-Z0-9_.-]{1,63})$"
    )]
    pub scope: String,
    /// camelCase kind (a Sphere operation type in tenant scopes).
    #[schema(pattern = "^[a-z][a-zA-Z0-9]{0,63}$")]
    pub kind: String,
    /// Client-chosen id (or header `Operation-Id`).
    #[schema(format = Uuid)]
    pub id: Option<String>,
    /// Initial result location.
    pub resource_location: Option<String>,
    /// Initial details location.
    pub details_location: Option<String>,
    /// Initial properties.
    #[schema(value_type = Option<Object>)]
    pub properties: Option<Map<String, Value>>,
    /// Emulator steps the service applies by itself: `[{after: "1s", state, percentComplete?, resourceLocation?, error?}]`.
    #[schema(value_type = Option<Vec<Object>>)]
    #[serde(default, deserialize_with = "script_steps")]
    pub script: Option<Vec<ScriptStep>>,
}

/// Reads a script step by step, so an error names the step at fault
/// ("script step 2: missing field `state`").
fn script_steps<'de, D: serde::Deserializer<'de>>(reader: D) -> Result<Option<Vec<ScriptStep>>, D::Error> {
    use serde::Deserialize;
    use serde::de::Error;
    let Some(steps) = Option::<Vec<Value>>::deserialize(reader)? else { return Ok(None) };
    let read = |(n, step): (usize, Value)| {
        serde_json::from_value(step).map_err(|e| D::Error::custom(format!("script step {}: {e}", n + 1)))
    };
    steps.into_iter().enumerate().map(read).collect::<Result<Vec<_>, _>>().map(Some)
}

/// An operation as the native API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Longrun::Operation)]
#[serde(rename_all = "camelCase")]
pub struct OperationBody {
    /// Operation id.
    pub id: String,
    /// Owner scope.
    pub scope: String,
    /// Kind.
    pub kind: String,
    /// State, PascalCase.
    #[schema(value_type = String, pattern = "^(NotStarted|Running|Succeeded|Failed|Canceled|CompleteWithErrors)$")]
    pub state: &'static str,
    /// Progress 0..=100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent_complete: Option<f64>,
    /// Creation time.
    pub created_at: String,
    /// First Running time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// Last change.
    pub last_action_at: String,
    /// Terminal time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// When it will be purged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Result location.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_location: Option<String>,
    /// Details location.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details_location: Option<String>,
    /// Producer data.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub properties: Option<Map<String, Value>>,
    /// Failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::dialect::devcenter::wire::Error>)]
    pub error: Option<OperationError>,
    /// Version (the ETag without quotes).
    pub version: i64,
    /// Worker attempts so far (leases).
    #[serde(skip_serializing_if = "is_zero")]
    pub attempts: u32,
    /// The dialect URL a client polls.
    pub operation_location: String,
    /// The worker lease it is held under, while Running under a worker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseHolder>,
    /// The W3C trace context of the request that created it, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// Who holds an operation's lease, and until when.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Longrun::LeaseHolder)]
pub struct LeaseHolder {
    /// The worker that claimed it (its `owner`, else its key id).
    pub owner: String,
    /// When the lease lapses without a heartbeat.
    pub expires_at: String,
}

impl From<&Operation> for OperationBody {
    fn from(op: &Operation) -> OperationBody {
        OperationBody {
            id: op.id.to_string(),
            scope: op.scope.to_string(),
            kind: op.kind.to_string(),
            state: op.state.as_str(),
            percent_complete: op.percent_complete,
            created_at: op.created_at.to_rfc3339_ticks(),
            started_at: op.started_at.map(|t| t.to_rfc3339_ticks()),
            last_action_at: op.last_action_at.to_rfc3339_ticks(),
            finished_at: op.finished_at.map(|t| t.to_rfc3339_ticks()),
            expires_at: op.expires_at.map(|t| t.to_rfc3339_ticks()),
            resource_location: op.resource_location.clone(),
            details_location: op.details_location.clone(),
            properties: op.properties.clone(),
            error: op.error.clone(),
            version: op.version,
            attempts: op.attempts,
            operation_location: crate::dialect::operation_location(op),
            lease: op.lease.as_ref().map(|lease| LeaseHolder {
                owner: lease.owner.clone(),
                expires_at: lease.expires_at.to_rfc3339_ticks(),
            }),
            traceparent: op.traceparent.clone(),
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A page of operations (Azure's paged-list shape).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Longrun::OperationPage)]
#[serde(rename_all = "camelCase")]
pub struct OperationPage {
    /// This page.
    pub value: Vec<OperationBody>,
    /// The next page, absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_link: Option<String>,
}

/// `PATCH /v1/operations/{id}` body: a JSON merge patch (RFC 7396) of the
/// writable fields. Documentation only: the handler applies the patch as
/// JSON, so that `null` can clear a field.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Longrun::OperationPatch)]
#[allow(dead_code)]
pub struct OperationPatch {
    /// Target state.
    #[schema(value_type = Option<String>, pattern = "^(NotStarted|Running|Succeeded|Failed|Canceled|CompleteWithErrors)$")]
    pub state: Option<String>,
    /// Progress, 0..=100, never decreasing.
    #[schema(minimum = 0, maximum = 100)]
    pub percent_complete: Option<f64>,
    /// Result location.
    pub resource_location: Option<String>,
    /// Details location.
    pub details_location: Option<String>,
    /// Properties, merged.
    #[schema(value_type = Option<Object>)]
    pub properties: Option<Map<String, Value>>,
    /// Error (Failed / CompleteWithErrors only).
    #[schema(value_type = Option<crate::dialect::devcenter::wire::Error>)]
    pub error: Option<OperationError>,
}

/// `POST /v1/leases` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = Longrun::ClaimLease)]
pub struct ClaimLease {
    /// Kinds this worker handles (at least one).
    pub kinds: Vec<String>,
    /// Only this scope (default: the key's own, or every scope for `*`).
    pub scope: Option<String>,
    /// How long the lease lasts without a heartbeat: "30s" (1s to 1h).
    pub ttl: Option<String>,
    /// Who is asking, for humans (default: the key id).
    pub owner: Option<String>,
}

/// `POST /v1/leases/{leaseId}:heartbeat` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = Longrun::LeaseHeartbeat)]
pub struct LeaseHeartbeat {
    /// Progress so far (never decreasing).
    #[schema(minimum = 0, maximum = 100)]
    pub percent_complete: Option<f64>,
    /// Properties to merge.
    #[schema(value_type = Option<Object>)]
    pub properties: Option<Map<String, Value>>,
    /// How long from now the lease lasts (default 30s, whatever the claim asked).
    pub ttl: Option<String>,
}

/// A lease as the native API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Longrun::Lease)]
pub struct LeaseBody {
    /// `{operationId}.{attempt}`: name it in heartbeats and the completion.
    pub lease_id: String,
    /// The attempt (fencing token).
    pub attempt: u32,
    /// When the lease lapses without a heartbeat (absent once it ended).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// True when the operation was canceled: stop working.
    pub canceled: bool,
    /// The W3C trace context of the request that created the operation
    /// (absent when it brought none and tracing is off): a worker makes
    /// its spans children of it, so they join that trace.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")]
    pub traceparent: Option<String>,
    /// The operation.
    pub operation: OperationBody,
}
