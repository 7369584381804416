//! The service's clock. Production reads the system clock; tests move it
//! forward (`advance`) to make retention and lease expiry happen without
//! sleeping. One clock is shared by everything a server does.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use time::OffsetDateTime;

use crate::model::Timestamp;

/// The system clock plus an offset that only tests change.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_nanos: Arc<AtomicI64>,
}

impl Clock {
    /// Now, truncated to the 100 ns Azure prints.
    pub fn now(&self) -> Timestamp {
        let system = OffsetDateTime::now_utc().unix_timestamp_nanos() as i64;
        Timestamp::from_unix_nanos(system + self.offset_nanos.load(Ordering::Relaxed))
    }

    /// Moves this clock (and every copy of it) forward.
    pub fn advance(&self, by: Duration) {
        self.offset_nanos.fetch_add(by.as_nanos() as i64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_every_copy() {
        let clock = Clock::default();
        let copy = clock.clone();
        let before = copy.now();
        clock.advance(Duration::from_secs(3600));
        assert!(copy.now().unix_nanos() - before.unix_nanos() >= 3_600_000_000_000);
    }
}
