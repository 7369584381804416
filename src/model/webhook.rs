//! Webhooks: receivers registered for a scope, and the deliveries of the
//! durable outbox with their retry schedule (exponential backoff with
//! jitter, for up to 24 h, then dead).

use std::time::Duration;

use super::{OperationId, Scope, Timestamp};

/// Longest a delivery is retried, from its creation.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
/// First retry delay; doubles each attempt.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// Longest delay between two attempts.
const MAX_RETRY: Duration = Duration::from_secs(3600);

/// A registered receiver.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    /// Public id, e.g. `wh_…`.
    pub id: String,
    /// Only this scope's changes (`None`: every scope).
    pub scope: Option<Scope>,
    /// Where deliveries are POSTed (http or https).
    pub url: String,
    /// The HMAC-SHA256 key deliveries are signed with.
    pub secret: String,
    /// Every change, or (the default) only changes into a terminal state.
    pub all_changes: bool,
    /// Changes logged at or before this position predate the webhook.
    pub start_seq: i64,
    /// When it was registered.
    pub created_at: Timestamp,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Not yet acknowledged; `next_at` says when to try.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up after `GIVE_UP_AFTER`.
    Dead,
}

impl DeliveryState {
    /// Storage and API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
        }
    }

    /// Parses the spelling of `as_str`.
    pub fn parse(s: &str) -> Option<DeliveryState> {
        [DeliveryState::Pending, DeliveryState::Delivered, DeliveryState::Dead].into_iter().find(|d| d.as_str() == s)
    }
}

/// One change to deliver to one webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Unique id (also sent to the receiver, to deduplicate).
    pub id: String,
    /// The receiver.
    pub webhook_id: String,
    /// The operation that changed.
    pub operation_id: OperationId,
    /// Its version after the change.
    pub version: i64,
    /// The change's position in the change log.
    pub seq: i64,
    /// Attempts made so far.
    pub attempts: u32,
    /// When to try next (pending only).
    pub next_at: Timestamp,
    /// Where it stands.
    pub state: DeliveryState,
    /// The receiver's last HTTP status, if it answered.
    pub last_status: Option<u16>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the change was queued.
    pub created_at: Timestamp,
}

impl Delivery {
    /// The record after a 2xx.
    pub fn delivered(&self, status: u16) -> Delivery {
        Delivery {
            attempts: self.attempts + 1,
            state: DeliveryState::Delivered,
            last_status: Some(status),
            last_error: None,
            ..self.clone()
        }
    }

    /// The record after a failed attempt: retried later, or dead after
    /// `GIVE_UP_AFTER`. `jitter` in 0..1 spreads retries of many deliveries.
    pub fn failed(&self, now: Timestamp, status: Option<u16>, error: String, jitter: f64) -> Delivery {
        let attempts = self.attempts + 1;
        let give_up = self.created_at.plus(GIVE_UP_AFTER);
        let next_at = now.plus(backoff(attempts, jitter));
        let state = if next_at >= give_up { DeliveryState::Dead } else { DeliveryState::Pending };
        Delivery { attempts, next_at, state, last_status: status, last_error: Some(error), ..self.clone() }
    }
}

/// Delay before attempt `attempts + 1`: 1 s, 2 s, 4 s … capped at 1 h, ±20 %.
pub fn backoff(attempts: u32, jitter: f64) -> Duration {
    let exponential = FIRST_RETRY.saturating_mul(2u32.saturating_pow(attempts.saturating_sub(1).min(20)));
    exponential.min(MAX_RETRY).mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour_with_jitter() {
        assert_eq!(backoff(1, 0.5), Duration::from_secs(1));
        assert_eq!(backoff(4, 0.5), Duration::from_secs(8));
        assert_eq!(backoff(30, 0.5), MAX_RETRY);
        assert!(backoff(4, 0.0) < backoff(4, 1.0));
    }

    #[test]
    fn a_delivery_dies_after_a_day_of_failures() {
        let created = Timestamp::from_unix_nanos(0);
        let mut delivery = Delivery {
            id: "d".into(),
            webhook_id: "w".into(),
            operation_id: OperationId::parse("fa067167-e49d-41bd-8dd8-de719b9de3b3").unwrap(),
            version: 3,
            seq: 9,
            attempts: 0,
            next_at: created,
            state: DeliveryState::Pending,
            last_status: None,
            last_error: None,
            created_at: created,
        };
        let mut attempts = 0;
        while delivery.state == DeliveryState::Pending {
            delivery = delivery.failed(delivery.next_at, Some(500), "boom".into(), 0.5);
            attempts += 1;
            assert!(attempts < 100);
        }
        assert_eq!(delivery.state, DeliveryState::Dead);
        assert!(attempts > 10, "retried for a day: {attempts} attempts");
        assert_eq!(delivery.delivered(200).state, DeliveryState::Delivered);
    }
}
