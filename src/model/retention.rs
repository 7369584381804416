//! How long a finished operation is kept, by outcome: users keep failures
//! longer, to investigate them.

use std::time::Duration;

use super::State;

/// Retention per outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Succeeded, Canceled and CompleteWithErrors operations.
    pub finished: Duration,
    /// Failed operations.
    pub failed: Duration,
}

impl Retention {
    /// The same retention for every outcome.
    pub const fn uniform(keep: Duration) -> Retention {
        Retention { finished: keep, failed: keep }
    }

    /// How long an operation that just entered `state` is kept.
    pub fn for_state(&self, state: State) -> Duration {
        match state {
            State::Failed => self.failed,
            _ => self.finished,
        }
    }
}
