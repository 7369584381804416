//! The transition rules: how an operation may change, and what the service
//! stamps on it when it does.
//!
//! A change is expressed as the full set of producer-writable fields after
//! the change (`Changes`); comparing that to the current set tells a no-op
//! retry from a real change, which keeps PATCH and cancel idempotent.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Operation, OperationError, Retention, State, Timestamp, TransitionError};

/// Longest accepted location string; longer ones are refused, not cut.
const MAX_LOCATION_LEN: usize = 2048;

/// Every field a producer may write, as it should be after a change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Changes {
    /// Target state.
    pub state: State,
    /// Target progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent_complete: Option<f64>,
    /// Target result location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_location: Option<String>,
    /// Target details location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details_location: Option<String>,
    /// Target properties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<Map<String, Value>>,
    /// Target error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<OperationError>,
}

/// The names a merge patch may touch, and those it may not.
pub const WRITABLE_FIELDS: [&str; 6] =
    ["state", "percentComplete", "resourceLocation", "detailsLocation", "properties", "error"];
const SERVICE_FIELDS: [&str; 11] = [
    "id",
    "scope",
    "kind",
    "createdAt",
    "startedAt",
    "lastActionAt",
    "finishedAt",
    "version",
    "expiresAt",
    "etag",
    "attempts",
];

/// The outcome of a change that was allowed.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// Something changed: this is the new record, version bumped.
    Changed(Box<Operation>),
    /// The request asked for what already is (a retry); nothing to store.
    Unchanged,
}

impl Operation {
    /// The producer-writable fields as they are now.
    pub fn changes(&self) -> Changes {
        Changes {
            state: self.state,
            percent_complete: self.percent_complete,
            resource_location: self.resource_location.clone(),
            details_location: self.details_location.clone(),
            properties: self.properties.clone(),
            error: self.error.clone(),
        }
    }

    /// Applies an RFC 7396 JSON merge patch to the writable fields.
    pub fn merge_patch(&self, patch: &Value) -> Result<Changes, TransitionError> {
        let invalid = |field: &'static str, reason: String| TransitionError::InvalidValue { field, reason };
        let Value::Object(fields) = patch else {
            return Err(invalid("body", "a merge patch must be a JSON object".into()));
        };
        for name in fields.keys() {
            if SERVICE_FIELDS.contains(&name.as_str()) {
                return Err(invalid("body", format!("'{name}' is set by the service and cannot be patched")));
            }
            if !WRITABLE_FIELDS.contains(&name.as_str()) {
                return Err(invalid(
                    "body",
                    format!("unknown field '{name}'; writable fields are {}", WRITABLE_FIELDS.join(", ")),
                ));
            }
        }
        if fields.get("state").is_some_and(Value::is_null) {
            return Err(invalid("state", "cannot be null".into()));
        }
        let mut document = serde_json::to_value(self.changes()).expect("Changes always serialize");
        json_patch::merge(&mut document, patch);
        serde_json::from_value(document).map_err(|e| invalid("body", e.to_string()))
    }

    /// Moves the operation to `to`, or says why it may not.
    pub fn apply(&self, to: Changes, now: Timestamp, retention: &Retention) -> Result<Applied, TransitionError> {
        if to == self.changes() {
            return Ok(Applied::Unchanged);
        }
        if self.state.is_terminal() {
            return Err(TransitionError::AlreadyTerminal { state: self.state });
        }
        check_state_move(self.state, to.state)?;
        check_progress(self.percent_complete, to.percent_complete)?;
        check_error(to.state, to.error.as_ref())?;
        check_location("resourceLocation", to.resource_location.as_deref())?;
        check_location("detailsLocation", to.details_location.as_deref())?;

        let mut next = self.clone();
        next.version += 1;
        next.last_action_at = now;
        if next.started_at.is_none() && starts_the_work(to.state) {
            next.started_at = Some(now);
        }
        if to.state.is_terminal() {
            // Nothing runs on a finished operation: no lease, no script.
            next.lease = None;
            next.script = None;
            next.finished_at = Some(now);
            next.expires_at = Some(now.plus(retention.for_state(to.state)));
        }
        next.state = to.state;
        // -0 is a valid JSON number and equals 0; it is kept as 0, so that
        // it is served as 0 and compared as 0 later.
        next.percent_complete = to.percent_complete.map(|p| if p == 0.0 { 0.0 } else { p });
        next.resource_location = to.resource_location;
        next.details_location = to.details_location;
        next.properties = to.properties;
        next.error = to.error;
        Ok(Applied::Changed(Box::new(next)))
    }

    /// Cancels the operation (idempotent when it is already Canceled).
    pub fn cancel(&self, now: Timestamp, retention: &Retention) -> Result<Applied, TransitionError> {
        let to = Changes { state: State::Canceled, ..self.changes() };
        self.apply(to, now, retention)
    }
}

/// Running → NotStarted is the only backwards move, and it belongs to lease
/// expiry, never to a producer's PATCH.
fn check_state_move(from: State, to: State) -> Result<(), TransitionError> {
    if from == State::Running && to == State::NotStarted {
        return Err(TransitionError::IllegalTransition { from, to });
    }
    Ok(())
}

/// Entering Running, or finishing with a result, means the work ran. Failing
/// or canceling before it ran leaves no start time: that would be invented.
fn starts_the_work(state: State) -> bool {
    matches!(state, State::Running | State::Succeeded | State::CompleteWithErrors)
}

fn check_progress(current: Option<f64>, requested: Option<f64>) -> Result<(), TransitionError> {
    if let Some(p) = requested
        && !(p.is_finite() && (0.0..=100.0).contains(&p))
    {
        return Err(TransitionError::InvalidValue {
            field: "percentComplete",
            reason: format!("{p} is outside 0..=100"),
        });
    }
    match (current, requested) {
        (Some(current), None) => Err(TransitionError::ProgressDecreased { current, requested: "null".into() }),
        (Some(current), Some(p)) if p < current => {
            Err(TransitionError::ProgressDecreased { current, requested: p.to_string() })
        }
        _ => Ok(()),
    }
}

fn check_error(state: State, error: Option<&OperationError>) -> Result<(), TransitionError> {
    let invalid = |reason: String| TransitionError::InvalidValue { field: "error", reason };
    match (state, error) {
        (State::Failed, None) => Err(invalid("a Failed operation needs an error {code, message}".into())),
        (State::Failed | State::CompleteWithErrors, Some(e))
            if e.code.trim().is_empty() || e.message.trim().is_empty() =>
        {
            Err(invalid("code and message must not be empty".into()))
        }
        (State::Failed | State::CompleteWithErrors, _) => Ok(()),
        (other, Some(_)) => {
            Err(invalid(format!("only Failed or CompleteWithErrors operations carry an error, not {other}")))
        }
        (_, None) => Ok(()),
    }
}

fn check_location(field: &'static str, location: Option<&str>) -> Result<(), TransitionError> {
    match location {
        Some(s) if s.len() > MAX_LOCATION_LEN => {
            Err(TransitionError::InvalidValue { field, reason: format!("longer than {MAX_LOCATION_LEN} bytes") })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Kind, NewOperation, OperationId, Scope};
    use serde_json::json;

    const RETENTION: Retention = Retention::uniform(std::time::Duration::from_secs(7 * 24 * 3600));

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_unix_nanos(seconds * 1_000_000_000)
    }

    fn operation_in(state: State) -> Operation {
        let request = NewOperation {
            scope: Scope::parse("projects/demo").unwrap(),
            kind: Kind::parse("deleteDevBox").unwrap(),
            resource_location: None,
            details_location: None,
            properties: None,
            script: None,
        };
        let id = OperationId::parse("fa067167-e49d-41bd-8dd8-de719b9de3b3").unwrap();
        let mut op = Operation::new(id, request, at(0));
        op.state = state;
        if state == State::Failed {
            op.error = Some(error());
        }
        op
    }

    fn error() -> OperationError {
        OperationError { code: "DiskFull".into(), message: "no space".into(), target: None, details: None }
    }

    fn move_to(state: State) -> Changes {
        let error = (state == State::Failed).then(error);
        Changes {
            state,
            percent_complete: None,
            resource_location: None,
            details_location: None,
            properties: None,
            error,
        }
    }

    #[test]
    fn every_pair_of_states_follows_the_rules() {
        for from in State::ALL {
            for to in State::ALL {
                let op = operation_in(from);
                let outcome = op.apply(move_to(to), at(5), &RETENTION);
                let expected_ok = if from == to {
                    true // a no-op, allowed even when terminal
                } else {
                    let backwards = from == State::Running && to == State::NotStarted;
                    !(from.is_terminal() || backwards)
                };
                assert_eq!(outcome.is_ok(), expected_ok, "{from} -> {to}: {outcome:?}");
                match outcome {
                    Ok(Applied::Changed(next)) => {
                        assert_eq!(next.state, to);
                        assert_eq!(next.version, 2);
                        assert_eq!(next.last_action_at, at(5));
                    }
                    Ok(Applied::Unchanged) => assert_eq!(from, to),
                    Err(e) if from.is_terminal() => {
                        assert_eq!(e, TransitionError::AlreadyTerminal { state: from })
                    }
                    Err(e) => assert_eq!(e, TransitionError::IllegalTransition { from, to }),
                }
            }
        }
    }

    #[test]
    fn timestamps_are_stamped_by_the_service() {
        let running = match operation_in(State::NotStarted).apply(move_to(State::Running), at(1), &RETENTION) {
            Ok(Applied::Changed(op)) => op,
            other => panic!("{other:?}"),
        };
        assert_eq!((running.started_at, running.finished_at), (Some(at(1)), None));
        let done = match running.apply(move_to(State::Succeeded), at(9), &RETENTION) {
            Ok(Applied::Changed(op)) => op,
            other => panic!("{other:?}"),
        };
        assert_eq!(done.started_at, Some(at(1)), "start time is kept");
        assert_eq!(done.finished_at, Some(at(9)));
        assert_eq!(done.expires_at, Some(at(9).plus(RETENTION.finished)));
        assert_eq!(done.version, 3);
    }

    #[test]
    fn canceling_before_the_work_ran_leaves_no_start_time() {
        let Ok(Applied::Changed(op)) = operation_in(State::NotStarted).cancel(at(3), &RETENTION) else { panic!() };
        assert_eq!((op.state, op.started_at, op.finished_at), (State::Canceled, None, Some(at(3))));
    }

    #[test]
    fn canceling_twice_is_a_no_op_and_canceling_a_finished_operation_is_refused() {
        assert_eq!(operation_in(State::Canceled).cancel(at(3), &RETENTION), Ok(Applied::Unchanged));
        assert_eq!(
            operation_in(State::Succeeded).cancel(at(3), &RETENTION),
            Err(TransitionError::AlreadyTerminal { state: State::Succeeded })
        );
    }

    #[test]
    fn progress_never_decreases_and_stays_in_range() {
        let mut op = operation_in(State::Running);
        op.percent_complete = Some(40.0);
        let with = |p: Option<f64>| Changes { percent_complete: p, ..move_to(State::Running) };
        assert!(matches!(op.apply(with(Some(41.5)), at(1), &RETENTION), Ok(Applied::Changed(_))));
        assert_eq!(op.apply(with(Some(40.0)), at(1), &RETENTION), Ok(Applied::Unchanged));
        for refused in [Some(39.0), None] {
            let e = op.apply(with(refused), at(1), &RETENTION).unwrap_err();
            assert!(matches!(e, TransitionError::ProgressDecreased { .. }) && e.is_conflict(), "{e:?}");
        }
        for out_of_range in [-1.0, 100.5, f64::NAN] {
            let e = op.apply(with(Some(out_of_range)), at(1), &RETENTION).unwrap_err();
            assert!(!e.is_conflict(), "{e:?}");
        }
    }

    #[test]
    fn failed_needs_an_error_and_only_failures_carry_one() {
        let op = operation_in(State::Running);
        let failed_without = Changes { error: None, ..move_to(State::Failed) };
        assert!(matches!(
            op.apply(failed_without, at(1), &RETENTION),
            Err(TransitionError::InvalidValue { field: "error", .. })
        ));
        let running_with = Changes { error: Some(error()), ..move_to(State::Running) };
        assert!(op.apply(running_with, at(1), &RETENTION).is_err());
        let partial = Changes { error: Some(error()), ..move_to(State::CompleteWithErrors) };
        assert!(matches!(op.apply(partial, at(1), &RETENTION), Ok(Applied::Changed(_))));
    }

    #[test]
    fn merge_patch_merges_properties_and_refuses_service_fields() {
        let mut op = operation_in(State::Running);
        op.properties = json!({"a": 1, "b": {"c": 2}}).as_object().cloned();
        let changes =
            op.merge_patch(&json!({"percentComplete": 10, "properties": {"b": {"c": null, "d": 3}}})).unwrap();
        assert_eq!(changes.properties, json!({"a": 1, "b": {"d": 3}}).as_object().cloned());
        assert_eq!(changes.percent_complete, Some(10.0));
        assert_eq!(changes.state, State::Running);
        for bad in
            [json!({"id": "x"}), json!({"colour": "red"}), json!([1]), json!({"state": null}), json!({"state": "Done"})]
        {
            assert!(op.merge_patch(&bad).is_err(), "{bad}");
        }
    }
}
