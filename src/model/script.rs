//! Emulator scripts: a list of timed steps the service applies to an
//! operation by itself, so client developers can exercise their pollers with
//! no backend (SPEC §5 "Scripts"). Steps are timed from the operation's
//! creation; each goes through the normal transition rules, and a step that
//! is no longer allowed (the operation was canceled, say) ends the script.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Applied, Changes, Operation, OperationError, Retention, State, Timestamp, TransitionError};

/// Most steps a script may have.
pub const MAX_STEPS: usize = 32;
/// Latest a step may be scheduled, counted from creation.
pub const MAX_AFTER: Duration = Duration::from_secs(24 * 3600);

/// One timed step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScriptStep {
    /// When, counted from the operation's creation: "1s", "1500ms", "2m".
    #[serde(serialize_with = "write_duration", deserialize_with = "read_duration")]
    pub after: Duration,
    /// The state to move to.
    pub state: State,
    /// Progress to report (kept as is when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent_complete: Option<f64>,
    /// Result location to set (kept as is when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_location: Option<String>,
    /// The error, for Failed or CompleteWithErrors steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<OperationError>,
}

/// A script and how far it has run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Script {
    /// The steps, in time order.
    pub steps: Vec<ScriptStep>,
    /// Index of the next step to apply.
    pub next: usize,
}

fn write_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_duration(*d))
}

fn read_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(|e| serde::de::Error::custom(format!("after '{text}': {e}")))
}

impl Script {
    /// Checks a producer's steps by playing them on a copy of `op`: every
    /// step must be allowed after the one before it, in time order.
    pub fn validate(steps: &[ScriptStep], op: &Operation) -> Result<(), String> {
        if steps.is_empty() || steps.len() > MAX_STEPS {
            return Err(format!("a script has 1 to {MAX_STEPS} steps"));
        }
        if steps.windows(2).any(|pair| pair[0].after > pair[1].after) {
            return Err("steps must be in time order".into());
        }
        if steps.iter().any(|step| step.after > MAX_AFTER) {
            return Err("a step may come at most 24h after creation".into());
        }
        let mut trial = op.clone();
        trial.script = Some(Script { steps: steps.to_vec(), next: 0 });
        for (index, step) in steps.iter().enumerate() {
            let at = trial.created_at.plus(step.after);
            trial = trial
                .apply_step(step, at, &Retention::uniform(MAX_AFTER))
                .map_err(|e| format!("step {index} ({}): {e}", step.state))?
                .unwrap_or(trial);
        }
        Ok(())
    }
}

impl Operation {
    /// When the next script step is due, if a script is running.
    pub fn script_due_at(&self) -> Option<Timestamp> {
        let script = self.script.as_ref()?;
        script.steps.get(script.next).map(|step| self.created_at.plus(step.after))
    }

    /// Applies the due script step: the new record (version bumped), with
    /// the script advanced, or dropped when the step is refused or was last.
    pub fn run_script_step(&self, now: Timestamp, retention: &Retention) -> Option<Operation> {
        let script = self.script.as_ref()?;
        let step = script.steps.get(script.next)?;
        let bumped = || Operation { version: self.version + 1, ..self.clone() };
        let (mut next, refused) = match self.apply_step(step, now, retention) {
            Ok(Some(changed)) => (changed, false),
            Ok(None) => (bumped(), false),
            Err(_) => (bumped(), true),
        };
        let more = !refused && !next.state.is_terminal() && script.next + 1 < script.steps.len();
        next.script = more.then(|| Script { steps: script.steps.clone(), next: script.next + 1 });
        Some(next)
    }

    fn apply_step(
        &self,
        step: &ScriptStep,
        now: Timestamp,
        retention: &Retention,
    ) -> Result<Option<Operation>, TransitionError> {
        let to = Changes {
            state: step.state,
            percent_complete: step.percent_complete.or(self.percent_complete),
            resource_location: step.resource_location.clone().or_else(|| self.resource_location.clone()),
            details_location: self.details_location.clone(),
            properties: self.properties.clone(),
            error: step.error.clone(),
        };
        Ok(match self.apply(to, now, retention)? {
            Applied::Changed(next) => Some(*next),
            Applied::Unchanged => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Kind, NewOperation, OperationId, Scope};

    fn op_with(steps: Vec<ScriptStep>) -> Operation {
        let request = NewOperation {
            scope: Scope::parse("projects/demo").unwrap(),
            kind: Kind::parse("deleteDevBox").unwrap(),
            resource_location: None,
            details_location: None,
            properties: None,
            script: Some(steps),
        };
        let id = OperationId::parse("fa067167-e49d-41bd-8dd8-de719b9de3b3").unwrap();
        Operation::new(id, request, Timestamp::from_unix_nanos(0))
    }

    fn step(after_ms: u64, state: State, percent: Option<f64>) -> ScriptStep {
        ScriptStep {
            after: Duration::from_millis(after_ms),
            state,
            percent_complete: percent,
            resource_location: None,
            error: None,
        }
    }

    const DAY: Retention = Retention::uniform(Duration::from_secs(86_400));

    #[test]
    fn steps_run_in_order_and_the_script_ends_with_the_last() {
        let op = op_with(vec![step(1000, State::Running, Some(40.0)), step(3000, State::Succeeded, Some(100.0))]);
        assert_eq!(op.script_due_at(), Some(Timestamp::from_unix_nanos(1_000_000_000)));
        let running = op.run_script_step(Timestamp::from_unix_nanos(1_000_000_000), &DAY).unwrap();
        assert_eq!((running.state, running.percent_complete, running.version), (State::Running, Some(40.0), 2));
        assert_eq!(running.script_due_at(), Some(Timestamp::from_unix_nanos(3_000_000_000)));
        let done = running.run_script_step(Timestamp::from_unix_nanos(3_000_000_000), &DAY).unwrap();
        assert_eq!((done.state, done.script.is_none()), (State::Succeeded, true));
        assert_eq!(done.script_due_at(), None);
    }

    #[test]
    fn a_step_the_rules_refuse_ends_the_script_without_changing_state() {
        let mut op = op_with(vec![step(1000, State::Running, None), step(2000, State::Succeeded, None)]);
        op.state = State::Canceled;
        let after = op.run_script_step(Timestamp::from_unix_nanos(1_000_000_000), &DAY).unwrap();
        assert_eq!((after.state, after.script.is_none()), (State::Canceled, true));
    }

    #[test]
    fn finishing_an_operation_ends_its_script() {
        let op = op_with(vec![step(1000, State::Running, None), step(2000, State::Succeeded, None)]);
        let Ok(Applied::Changed(canceled)) = op.cancel(Timestamp::from_unix_nanos(10), &DAY) else { panic!() };
        assert_eq!((canceled.script.as_ref(), canceled.script_due_at()), (None, None));
        assert_eq!(canceled.run_script_step(Timestamp::from_unix_nanos(5_000_000_000), &DAY), None, "no version bump");
    }

    #[test]
    fn validation_plays_the_steps() {
        let op = op_with(vec![]);
        assert!(Script::validate(&[step(0, State::Running, Some(10.0)), step(5, State::Succeeded, None)], &op).is_ok());
        assert!(Script::validate(&[], &op).is_err());
        assert!(
            Script::validate(&[step(5, State::Running, None), step(1, State::Succeeded, None)], &op).is_err(),
            "time order"
        );
        assert!(
            Script::validate(&[step(1, State::Running, Some(50.0)), step(2, State::Running, Some(10.0))], &op).is_err(),
            "progress back"
        );
        assert!(Script::validate(&[step(1, State::Failed, None)], &op).is_err(), "Failed needs an error");
        assert!(
            Script::validate(&[step(1, State::Succeeded, None), step(2, State::Running, None)], &op).is_err(),
            "after the end"
        );
    }

    #[test]
    fn after_reads_and_writes_human_durations() {
        let parsed: ScriptStep = serde_json::from_str(r#"{"after": "1500ms", "state": "Running"}"#).unwrap();
        assert_eq!(parsed.after, Duration::from_millis(1500));
        assert_eq!(serde_json::to_value(&parsed).unwrap()["after"], "1s 500ms");
        assert!(serde_json::from_str::<ScriptStep>(r#"{"after": "soon", "state": "Running"}"#).is_err());
    }
}
