//! The six operation states and which of them are final.

use serde::{Deserialize, Serialize};

/// Where an operation is in its life. The last four are terminal: once an
/// operation reaches one, nothing moves it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum State {
    /// Accepted, waiting for a worker.
    NotStarted,
    /// A worker is on it.
    Running,
    /// Done, and it worked.
    Succeeded,
    /// Done, and it did not work; an error says why.
    Failed,
    /// Stopped on request before it finished.
    Canceled,
    /// Done, with part of the work failed (Sphere's `CompleteWithErrors`).
    CompleteWithErrors,
}

impl State {
    /// Every state, in declaration order (handy for exhaustive tests).
    pub const ALL: [State; 6] = [
        State::NotStarted,
        State::Running,
        State::Succeeded,
        State::Failed,
        State::Canceled,
        State::CompleteWithErrors,
    ];

    /// True for the states no transition may leave.
    pub fn is_terminal(self) -> bool {
        !matches!(self, State::NotStarted | State::Running)
    }

    /// The canonical (native API and storage) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            State::NotStarted => "NotStarted",
            State::Running => "Running",
            State::Succeeded => "Succeeded",
            State::Failed => "Failed",
            State::Canceled => "Canceled",
            State::CompleteWithErrors => "CompleteWithErrors",
        }
    }

    /// Parses the canonical spelling, exactly.
    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|state| state.as_str() == s)
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_not_started_and_running_are_not_terminal() {
        let open: Vec<State> = State::ALL.into_iter().filter(|s| !s.is_terminal()).collect();
        assert_eq!(open, vec![State::NotStarted, State::Running]);
    }

    #[test]
    fn every_state_round_trips_through_its_name() {
        for state in State::ALL {
            assert_eq!(State::parse(state.as_str()), Some(state));
        }
        assert_eq!(State::parse("running"), None);
    }
}
