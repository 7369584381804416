//! Worker leases (SPEC §5): a worker claims a NotStarted operation for a
//! while and keeps it with heartbeats. The attempt number is the fencing
//! token: whatever a worker sends names its attempt, and anything from an
//! attempt that is no longer current is refused, never applied.
//!
//! Lease ids are `{operation id}.{attempt}`: self-describing, so nothing but
//! the operation row is needed to check one.

use std::time::Duration;

use super::{Applied, Changes, Operation, OperationError, OperationId, Retention, State, Timestamp, TransitionError};

/// A live claim on an operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    /// Who holds it (free text from the worker, for humans).
    pub owner: String,
    /// When it lapses unless extended.
    pub expires_at: Timestamp,
}

/// A lease id, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseId {
    /// The leased operation.
    pub operation: OperationId,
    /// The attempt (fencing token).
    pub attempt: u32,
}

impl LeaseId {
    /// Parses `{uuid}.{attempt}`.
    pub fn parse(s: &str) -> Option<LeaseId> {
        let (id, attempt) = s.rsplit_once('.')?;
        Some(LeaseId { operation: OperationId::parse(id)?, attempt: attempt.parse().ok().filter(|a| *a > 0)? })
    }
}

impl std::fmt::Display for LeaseId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.operation, self.attempt)
    }
}

/// Why a lease call was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LeaseError {
    /// The attempt named is not the current one, or its lease lapsed.
    #[error("lease {0} is no longer held (it expired, or a newer attempt owns the operation)")]
    Lost(LeaseId),
    /// The change the worker sent breaks a transition rule.
    #[error(transparent)]
    Refused(#[from] TransitionError),
}

/// What a heartbeat tells the worker.
#[derive(Debug, Clone, PartialEq)]
pub enum Heartbeat {
    /// Keep going; here is the record with the extended lease.
    Extended(Operation),
    /// The operation was canceled meanwhile: stop working.
    Canceled(Operation),
}

impl Operation {
    /// The id of the current lease, if one is held.
    pub fn lease_id(&self) -> Option<LeaseId> {
        self.lease.as_ref().map(|_| LeaseId { operation: self.id, attempt: self.attempts })
    }

    /// Claims a NotStarted operation: Running, next attempt, leased until `now + ttl`.
    pub fn claim(&self, owner: &str, ttl: Duration, now: Timestamp) -> Option<Operation> {
        if self.state != State::NotStarted || self.lease.is_some() || self.script.is_some() {
            return None;
        }
        let mut next = self.clone();
        next.state = State::Running;
        next.started_at = next.started_at.or(Some(now));
        next.last_action_at = now;
        next.attempts += 1;
        next.lease = Some(Lease { owner: owner.to_owned(), expires_at: now.plus(ttl) });
        next.version += 1;
        Some(next)
    }

    fn check_lease(&self, lease: LeaseId, now: Timestamp) -> Result<(), LeaseError> {
        let live = self.lease.as_ref().is_some_and(|l| l.expires_at > now);
        if lease.operation == self.id && lease.attempt == self.attempts && live {
            Ok(())
        } else {
            Err(LeaseError::Lost(lease))
        }
    }

    /// Extends the lease and records progress; tells a canceled worker to stop.
    pub fn heartbeat(
        &self,
        lease: LeaseId,
        changes: Changes,
        ttl: Duration,
        now: Timestamp,
    ) -> Result<Heartbeat, LeaseError> {
        if self.state == State::Canceled && lease.attempt == self.attempts {
            return Ok(Heartbeat::Canceled(self.clone()));
        }
        self.check_lease(lease, now)?;
        let mut next = match self.apply(Changes { state: State::Running, ..changes }, now, &Retention::uniform(ttl))? {
            Applied::Changed(next) => *next,
            Applied::Unchanged => Operation { version: self.version + 1, ..self.clone() },
        };
        next.lease = Some(Lease {
            owner: self.lease.as_ref().map(|l| l.owner.clone()).unwrap_or_default(),
            expires_at: now.plus(ttl),
        });
        Ok(Heartbeat::Extended(next))
    }

    /// Ends the attempt with a result (a terminal state); the lease goes.
    pub fn complete(
        &self,
        lease: LeaseId,
        changes: Changes,
        now: Timestamp,
        retention: &Retention,
    ) -> Result<Operation, LeaseError> {
        self.check_lease(lease, now)?;
        if !changes.state.is_terminal() {
            return Err(TransitionError::InvalidValue {
                field: "state",
                reason: "a lease completes with a terminal state".into(),
            }
            .into());
        }
        match self.apply(changes, now, retention)? {
            Applied::Changed(next) => Ok(*next),
            Applied::Unchanged => unreachable!("a Running operation never equals a terminal change"),
        }
    }

    /// After a lease lapsed: back to NotStarted for another attempt (its
    /// progress reset), or Failed with `WorkerLost` once `max_attempts` ran.
    pub fn expire_lease(&self, now: Timestamp, max_attempts: u32, retention: &Retention) -> Option<Operation> {
        let lapsed = self.state == State::Running && self.lease.as_ref().is_some_and(|l| l.expires_at <= now);
        if !lapsed {
            return None;
        }
        if self.attempts >= max_attempts {
            let error = OperationError {
                code: "WorkerLost".into(),
                message: format!("the worker stopped heartbeating; gave up after {} attempts", self.attempts),
                target: None,
                details: None,
            };
            let failed = Changes { state: State::Failed, error: Some(error), ..self.changes() };
            return match self.apply(failed, now, retention) {
                Ok(Applied::Changed(next)) => Some(*next),
                _ => None,
            };
        }
        Some(self.requeued(now))
    }

    /// Hands a held operation back at once, as a lapse would (a worker
    /// stopping before it began the work): NotStarted for another attempt.
    /// The attempt stays counted, so its lease id never comes back.
    pub fn release(&self, lease: LeaseId, now: Timestamp) -> Result<Operation, LeaseError> {
        self.check_lease(lease, now)?;
        Ok(self.requeued(now))
    }

    fn requeued(&self, now: Timestamp) -> Operation {
        let mut next = self.clone();
        next.state = State::NotStarted;
        next.percent_complete = None;
        next.lease = None;
        next.last_action_at = now;
        next.version += 1;
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Kind, NewOperation, Scope};

    const TTL: Duration = Duration::from_secs(30);
    const KEEP: Retention = Retention::uniform(Duration::from_secs(86_400));

    fn at(s: i64) -> Timestamp {
        Timestamp::from_unix_nanos(s * 1_000_000_000)
    }

    fn queued() -> Operation {
        let request = NewOperation {
            scope: Scope::parse("projects/work").unwrap(),
            kind: Kind::parse("deleteDevBox").unwrap(),
            resource_location: None,
            details_location: None,
            properties: None,
            script: None,
        };
        Operation::new(OperationId::parse("fa067167-e49d-41bd-8dd8-de719b9de3b3").unwrap(), request, at(0))
    }

    fn progress(op: &Operation, p: f64) -> Changes {
        Changes { percent_complete: Some(p), ..op.changes() }
    }

    #[test]
    fn a_released_lease_queues_its_operation_again_and_is_lost_for_good() {
        let claimed = queued().claim("w1", TTL, at(1)).unwrap();
        let lease = claimed.lease_id().unwrap();
        let released = claimed.release(lease, at(2)).unwrap();
        assert_eq!((released.state, released.lease.is_none()), (State::NotStarted, true));
        let again = released.claim("w2", TTL, at(3)).unwrap();
        assert_ne!(again.lease_id(), Some(lease), "a new attempt, a new fencing token");
        assert!(
            matches!(again.release(lease, at(4)), Err(LeaseError::Lost(_))),
            "the old lease cannot release the new"
        );
    }

    #[test]
    fn lease_ids_round_trip() {
        let id = LeaseId { operation: queued().id, attempt: 3 };
        assert_eq!(LeaseId::parse(&id.to_string()), Some(id));
        assert_eq!(LeaseId::parse("fa067167-e49d-41bd-8dd8-de719b9de3b3.0"), None);
        assert_eq!(LeaseId::parse("nope.1"), None);
    }

    #[test]
    fn a_claim_starts_the_next_attempt_and_only_once() {
        let claimed = queued().claim("w1", TTL, at(1)).unwrap();
        assert_eq!((claimed.state, claimed.attempts, claimed.started_at), (State::Running, 1, Some(at(1))));
        assert_eq!(claimed.lease_id().unwrap().attempt, 1);
        assert!(claimed.claim("w2", TTL, at(2)).is_none(), "at most one holder");
    }

    #[test]
    fn heartbeats_extend_and_record_progress_until_the_lease_lapses() {
        let claimed = queued().claim("w1", TTL, at(1)).unwrap();
        let lease = claimed.lease_id().unwrap();
        let Ok(Heartbeat::Extended(beat)) = claimed.heartbeat(lease, progress(&claimed, 50.0), TTL, at(20)) else {
            panic!()
        };
        assert_eq!((beat.percent_complete, beat.lease.as_ref().unwrap().expires_at), (Some(50.0), at(50)));
        assert_eq!(beat.heartbeat(lease, progress(&beat, 60.0), TTL, at(51)), Err(LeaseError::Lost(lease)), "lapsed");
        let stale = LeaseId { attempt: 7, ..lease };
        assert_eq!(beat.heartbeat(stale, progress(&beat, 60.0), TTL, at(30)), Err(LeaseError::Lost(stale)), "fenced");
        assert!(matches!(beat.heartbeat(lease, progress(&beat, 10.0), TTL, at(30)), Err(LeaseError::Refused(_))));
    }

    #[test]
    fn a_canceled_operation_tells_its_worker_to_stop() {
        let claimed = queued().claim("w1", TTL, at(1)).unwrap();
        let lease = claimed.lease_id().unwrap();
        let Ok(Applied::Changed(canceled)) = claimed.cancel(at(2), &KEEP) else { panic!() };
        assert!(canceled.lease.is_none(), "terminal operations hold no lease");
        assert!(matches!(canceled.heartbeat(lease, canceled.changes(), TTL, at(3)), Ok(Heartbeat::Canceled(_))));
        let done = Changes { state: State::Succeeded, ..canceled.changes() };
        assert_eq!(
            canceled.complete(lease, done, at(3), &KEEP),
            Err(LeaseError::Lost(lease)),
            "cancel and completion never both win"
        );
    }

    #[test]
    fn completing_ends_the_lease_with_a_terminal_state() {
        let claimed = queued().claim("w1", TTL, at(1)).unwrap();
        let lease = claimed.lease_id().unwrap();
        let not_terminal = claimed.changes();
        assert!(claimed.complete(lease, not_terminal, at(2), &KEEP).is_err());
        let done =
            claimed.complete(lease, Changes { state: State::Succeeded, ..claimed.changes() }, at(2), &KEEP).unwrap();
        assert_eq!((done.state, done.lease.is_none()), (State::Succeeded, true));
        assert!(done.complete(lease, done.changes(), at(3), &KEEP).is_err(), "exactly once");
    }

    #[test]
    fn a_lapsed_lease_requeues_until_max_attempts_then_fails_with_worker_lost() {
        let mut op = queued();
        for attempt in 1..=3 {
            op = op.claim("w", TTL, at(attempt * 100)).unwrap();
            let mut advanced = op.clone();
            advanced.percent_complete = Some(30.0);
            assert!(advanced.expire_lease(at(attempt * 100 + 29), 3, &KEEP).is_none(), "not yet");
            op = advanced.expire_lease(at(attempt * 100 + 30), 3, &KEEP).unwrap();
            if attempt < 3 {
                assert_eq!((op.state, op.percent_complete, op.attempts), (State::NotStarted, None, attempt as u32));
            }
        }
        assert_eq!(op.state, State::Failed);
        assert_eq!(op.error.as_ref().unwrap().code, "WorkerLost");
        assert!(op.lease.is_none());
    }
}
