//! The service's clock. Production reads the system clock; tests move it
//! forward (`advance`) to make retention and lease expiry happen without
//! sleeping. One clock is shared by everything a server does.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use crate::model::Timestamp;

/// The system clock plus an offset that only tests change.
#[derive(Debug, Clone)]
pub struct Clock {
    offset_nanos: Arc<AtomicI64>,
    /// Told whenever the offset moves, so that background work sleeping
    /// until a due time re-reads the time at once.
    moved: Arc<watch::Sender<()>>,
}

impl Default for Clock {
    fn default() -> Clock {
        Clock { offset_nanos: Arc::default(), moved: Arc::new(watch::channel(()).0) }
    }
}

impl Clock {
    /// Now, truncated to the 100 ns Azure prints.
    pub fn now(&self) -> Timestamp {
        Timestamp::from_unix_nanos(system_nanos() + self.offset_nanos.load(Ordering::Relaxed))
    }

    /// The system clock's now, for callers without a shared clock (it
    /// cannot have been moved).
    pub fn system_now() -> Timestamp {
        Timestamp::from_unix_nanos(system_nanos())
    }

    /// Moves this clock (and every copy of it) forward.
    pub fn advance(&self, by: Duration) {
        self.offset_nanos.fetch_add(by.as_nanos() as i64, Ordering::Relaxed);
        self.moved.send_replace(());
    }

    /// A receiver that sees every `advance` from now on.
    pub fn watch_moves(&self) -> watch::Receiver<()> {
        self.moved.subscribe()
    }
}

/// Nanoseconds since the epoch straight from the system clock: no calendar
/// date is worked out, and this runs on every request.
fn system_nanos() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => since.as_nanos() as i64,
        Err(before) => -(before.duration().as_nanos() as i64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_system_clock() {
        let system = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64;
        for now in [Clock::default().now(), Clock::system_now()] {
            assert!((now.unix_nanos() - system).abs() < 1_000_000_000, "{now:?} is not now");
        }
    }

    #[test]
    fn advancing_moves_every_copy() {
        let clock = Clock::default();
        let copy = clock.clone();
        let before = copy.now();
        clock.advance(Duration::from_secs(3600));
        assert!(copy.now().unix_nanos() - before.unix_nanos() >= 3_600_000_000_000);
    }
}
