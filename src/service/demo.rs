//! The script `serve --demo` attaches to operations started through the
//! emulated initiators, so an unchanged SDK sees a whole flow with no worker:
//! NotStarted → Running 40 % after 1 s → Succeeded after 3 s.

use std::time::Duration;

use crate::model::{ScriptStep, State};

/// The default flow, ending with `resource_location` set.
pub fn default_script(resource_location: Option<String>) -> Vec<ScriptStep> {
    vec![
        ScriptStep {
            after: Duration::from_secs(1),
            state: State::Running,
            percent_complete: Some(40.0),
            resource_location: None,
            error: None,
        },
        ScriptStep {
            after: Duration::from_secs(3),
            state: State::Succeeded,
            percent_complete: Some(100.0),
            resource_location,
            error: None,
        },
    ]
}
