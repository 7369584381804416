//! Model → protobuf for the gRPC transport: the same operation the REST
//! mapping renders, as `google.longrunning.Operation` with packed
//! `Struct`s, and longrun's refusals as `tonic::Status` with an ErrorInfo.

use prost::Message;
use prost_types::value::Kind;
use prost_types::{Any, ListValue, Struct, Value as ProtoValue};
use serde_json::{Map, Value};
use tonic_types::{ErrorDetails, StatusExt};

use super::generated::{Operation as ProtoOperation, operation::Result as OperationResult};
use crate::dialect::google::wire::{ERROR_INFO_TYPE, STRUCT_TYPE};
use crate::dialect::google::{Outcome, code, metadata, operation_name, outcome};
use crate::http::error::CoreError;
use crate::model::Operation;

/// `op` as a `google.longrunning.Operation`.
pub fn operation(op: &Operation) -> ProtoOperation {
    let result = match outcome(op) {
        Outcome::Pending => None,
        Outcome::Response(fields) => Some(OperationResult::Response(pack(STRUCT_TYPE, &to_struct(fields)))),
        Outcome::Error { code, message, reason } => {
            let info = tonic_types::pb::ErrorInfo { reason, domain: "longrun".into(), metadata: Default::default() };
            let details = vec![pack(ERROR_INFO_TYPE, &info)];
            Some(OperationResult::Error(tonic_types::pb::Status { code, message, details }))
        }
    };
    ProtoOperation {
        name: operation_name(op),
        metadata: Some(pack(STRUCT_TYPE, &to_struct(metadata(op)))),
        done: op.state.is_terminal(),
        result,
    }
}

/// A refusal as a gRPC status: the code Google's mapping gives it, the
/// public message, and an ErrorInfo naming longrun's code.
pub fn status(core: CoreError) -> tonic::Status {
    let (code, _) = code::of_core(&core);
    if matches!(core, CoreError::Internal(_)) {
        tracing::error!(error = %format!("{core:#}"), "gRPC call failed");
    }
    let mut details =
        ErrorDetails::with_error_info(code::upper_snake(core.code()), "longrun", std::collections::HashMap::new());
    // A gRPC answer has no Retry-After header: RetryInfo says how long to wait instead.
    if let CoreError::TooManyRequests { retry_after_secs } = core {
        details.set_retry_info(Some(std::time::Duration::from_secs(retry_after_secs)));
    }
    tonic::Status::with_error_details(tonic::Code::from(code), core.public_message(), details)
}

fn pack(type_url: &str, message: &impl Message) -> Any {
    Any { type_url: type_url.into(), value: message.encode_to_vec() }
}

fn to_struct(fields: Map<String, Value>) -> Struct {
    Struct { fields: fields.into_iter().map(|(name, value)| (name, to_value(value))).collect() }
}

fn to_value(value: Value) -> ProtoValue {
    let kind = match value {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => Kind::StringValue(s),
        Value::Array(items) => Kind::ListValue(ListValue { values: items.into_iter().map(to_value).collect() }),
        Value::Object(fields) => Kind::StructValue(to_struct(fields)),
    };
    ProtoValue { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_values_become_struct_values_of_the_same_shape() {
        let fields = json!({"a": null, "b": true, "c": 1.5, "d": "x", "e": [1, "y"], "f": {"g": false}});
        let Value::Object(fields) = fields else { unreachable!() };
        let packed = to_struct(fields);
        assert_eq!(packed.fields["c"].kind, Some(Kind::NumberValue(1.5)));
        assert_eq!(packed.fields["d"].kind, Some(Kind::StringValue("x".into())));
        let Some(Kind::ListValue(list)) = &packed.fields["e"].kind else { panic!("a list") };
        assert_eq!(list.values[1].kind, Some(Kind::StringValue("y".into())));
        let Some(Kind::StructValue(inner)) = &packed.fields["f"].kind else { panic!("a struct") };
        assert_eq!(inner.fields["g"].kind, Some(Kind::BoolValue(false)));
        assert_eq!(packed.fields["a"].kind, Some(Kind::NullValue(0)));
    }
}
