//! Whether the collector is down: after a failed export, request spans are
//! shed (they get ids, so trace context still travels, but nothing is
//! recorded or queued) for a backoff that doubles from 1 s to 30 s while
//! exports keep failing; the spans made after it probe the collector again.
//! Spans a down collector would lose anyway then cost a request almost
//! nothing (BENCHMARKS.md, OTLP with the collector down).

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MOST_BACKOFF: Duration = Duration::from_secs(30);

/// Milliseconds since `EPOCH` until which spans are shed; 0 while the collector is up.
static DOWN_UNTIL: AtomicU64 = AtomicU64::new(0);
/// The current backoff in milliseconds (0 while the collector is up).
static BACKOFF: AtomicU64 = AtomicU64::new(0);
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn now_ms() -> u64 {
    EPOCH.elapsed().as_millis() as u64
}

/// Whether request spans are being shed now (one atomic load while the collector is up).
pub fn collector_down() -> bool {
    let until = DOWN_UNTIL.load(Ordering::Relaxed);
    until != 0 && now_ms() < until
}

/// An export failed: shed spans for the next backoff.
pub fn export_failed(error: &dyn std::fmt::Display) {
    let first = FIRST_BACKOFF.as_millis() as u64;
    let previous = BACKOFF.load(Ordering::Relaxed);
    if previous == 0 {
        tracing::warn!(%error, "OpenTelemetry: the collector took no spans; shedding request spans while it is down");
    }
    let backoff = if previous == 0 { first } else { (previous * 2).min(MOST_BACKOFF.as_millis() as u64) };
    BACKOFF.store(backoff, Ordering::Relaxed);
    DOWN_UNTIL.store(now_ms() + backoff, Ordering::Relaxed);
}

/// An export succeeded: the collector is up.
pub fn export_succeeded() {
    if BACKOFF.load(Ordering::Relaxed) != 0 {
        tracing::info!("OpenTelemetry: the collector takes spans again");
    }
    BACKOFF.store(0, Ordering::Relaxed);
    DOWN_UNTIL.store(0, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_export_sheds_spans_until_one_succeeds_and_the_backoff_doubles_to_its_cap() {
        export_succeeded();
        assert!(!collector_down());
        export_failed(&"refused");
        assert!(collector_down());
        assert_eq!(BACKOFF.load(Ordering::Relaxed), 1_000);
        export_failed(&"refused");
        assert_eq!(BACKOFF.load(Ordering::Relaxed), 2_000);
        (0..10).for_each(|_| export_failed(&"refused"));
        assert_eq!(BACKOFF.load(Ordering::Relaxed), 30_000, "capped");
        export_succeeded();
        assert!(!collector_down());
    }
}
