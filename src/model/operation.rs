//! The operation record and the request that creates one.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{Kind, Lease, OperationError, OperationId, Scope, Script, ScriptStep, State, Timestamp};

/// One long-running operation, dialect-neutral (SPEC §1).
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// Unique across the service.
    pub id: OperationId,
    /// Who owns it; every read is filtered by it.
    pub scope: Scope,
    /// What it does.
    pub kind: Kind,
    /// Where it is in its life.
    pub state: State,
    /// 0..=100; never decreases within an attempt.
    pub percent_complete: Option<f64>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it first started running.
    pub started_at: Option<Timestamp>,
    /// When it last changed.
    pub last_action_at: Timestamp,
    /// When it reached a terminal state.
    pub finished_at: Option<Timestamp>,
    /// Where the result lives.
    pub resource_location: Option<String>,
    /// Where more detail lives.
    pub details_location: Option<String>,
    /// Producer-defined result data.
    pub properties: Option<Map<String, Value>>,
    /// Why it failed (Failed) or what partly failed (CompleteWithErrors).
    pub error: Option<OperationError>,
    /// Bumped on every change; the ETag.
    pub version: i64,
    /// When a terminal operation may be purged (retention).
    pub expires_at: Option<Timestamp>,
    /// The emulator script still to run, if any.
    pub script: Option<Script>,
    /// How many worker attempts have claimed it (the fencing token).
    pub attempts: u32,
    /// The current worker lease, while Running under a worker.
    pub lease: Option<Lease>,
    /// SHA-256 of the creating request, so a repeated create with the same
    /// client-chosen id can tell "same request again" from "different request".
    pub create_fingerprint: String,
    /// The W3C `traceparent` of the request that created it, handed to its
    /// worker and webhook receivers so their work joins that trace.
    pub traceparent: Option<String>,
}

/// A validated create request (what `POST /v1/operations` and the emulated
/// initiators hand to `ops::create`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewOperation {
    /// Owner scope.
    #[serde(with = "scope_text")]
    pub scope: Scope,
    /// Operation kind.
    #[serde(with = "kind_text")]
    pub kind: Kind,
    /// Initial result location, if known up front.
    pub resource_location: Option<String>,
    /// Initial details location.
    pub details_location: Option<String>,
    /// Initial properties.
    pub properties: Option<Map<String, Value>>,
    /// Steps the service applies by itself (emulator mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<Vec<ScriptStep>>,
}

impl NewOperation {
    /// A stable hash of the request: serde_json orders object keys, so equal
    /// requests give equal fingerprints whatever their key order on the wire.
    pub fn fingerprint(&self) -> String {
        let canonical = serde_json::to_vec(self).expect("a NewOperation always serializes");
        let digest = Sha256::digest(canonical);
        format!("{digest:x}")
    }
}

impl Operation {
    /// A fresh operation, NotStarted, version 1.
    pub fn new(id: OperationId, request: NewOperation, now: Timestamp) -> Operation {
        let create_fingerprint = request.fingerprint();
        Operation {
            id,
            scope: request.scope,
            kind: request.kind,
            state: State::NotStarted,
            percent_complete: None,
            created_at: now,
            started_at: None,
            last_action_at: now,
            finished_at: None,
            resource_location: request.resource_location,
            details_location: request.details_location,
            properties: request.properties,
            error: None,
            version: 1,
            expires_at: None,
            script: request.script.map(|steps| Script { steps, next: 0 }),
            attempts: 0,
            lease: None,
            create_fingerprint,
            traceparent: None,
        }
    }

    /// The strong ETag of this version, quotes included.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.version)
    }
}

mod scope_text {
    use super::Scope;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(scope: &Scope, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(scope)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Scope, D::Error> {
        Scope::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

mod kind_text {
    use super::Kind;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(kind: &Kind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(kind.as_ref())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Kind, D::Error> {
        Kind::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(properties: Value) -> NewOperation {
        NewOperation {
            scope: Scope::parse("projects/demo").unwrap(),
            kind: Kind::parse("deleteDevBox").unwrap(),
            resource_location: None,
            details_location: None,
            properties: properties.as_object().cloned(),
            script: None,
        }
    }

    #[test]
    fn fingerprints_ignore_key_order_but_not_values() {
        let a = request(serde_json::json!({"a": 1, "b": 2}));
        let b = request(serde_json::from_str(r#"{"b": 2, "a": 1}"#).unwrap());
        let c = request(serde_json::json!({"a": 1, "b": 3}));
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
    }

    #[test]
    fn a_new_operation_is_not_started_at_version_one() {
        let now = Timestamp::from_unix_nanos(1_000);
        let id = OperationId::parse("fa067167-e49d-41bd-8dd8-de719b9de3b3").unwrap();
        let op = Operation::new(id, request(Value::Null), now);
        assert_eq!((op.state, op.version, op.last_action_at), (State::NotStarted, 1, now));
        assert_eq!(op.etag(), "\"1\"");
    }
}
