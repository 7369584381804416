//! The change notifications of a round of writes: its change lines, joined
//! into as few `NOTIFY` payloads as PostgreSQL accepts.
//!
//! Why they are sent after the round's COMMIT, in transactions of their
//! own, rather than by `pg_notify` inside the writing transaction:
//! PostgreSQL serialises the commits of every transaction that notifies (a
//! database-wide lock from queuing the notification to the end of the
//! commit, fsync included), so concurrent writers could not share a WAL
//! flush. A transaction that only notifies writes no WAL and holds that
//! lock for microseconds.
//!
//! What that costs: a notification is lost if the node dies between its
//! COMMIT and its notification. The change log is durable and ordered, and
//! every consumer treats a notification as "read the log": a lost one
//! delays a wake-up elsewhere (a long-poll then answers at its timeout with
//! the current state), and other nodes' caches read an entry again after
//! at most a second; it never loses a change.

/// PostgreSQL refuses payloads of 8,000 bytes or more.
const MAX_PAYLOAD: usize = 7_900;

/// `lines`, one per change, joined by newlines into payloads under the limit.
pub fn payloads(lines: &[&str]) -> Vec<String> {
    let mut payloads = Vec::new();
    let mut payload = String::new();
    for line in lines {
        if !payload.is_empty() && payload.len() + 1 + line.len() > MAX_PAYLOAD {
            payloads.push(std::mem::take(&mut payload));
        }
        if !payload.is_empty() {
            payload.push('\n');
        }
        payload.push_str(line);
    }
    if !payload.is_empty() {
        payloads.push(payload);
    }
    payloads
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_joined_into_payloads_under_the_limit() {
        assert!(payloads(&[]).is_empty());
        assert_eq!(payloads(&["a", "b"]), vec!["a\nb".to_owned()]);
        let line = "x".repeat(100);
        let many: Vec<&str> = (0..200).map(|_| line.as_str()).collect();
        let joined = payloads(&many);
        assert!(joined.len() > 1);
        assert!(joined.iter().all(|p| p.len() < MAX_PAYLOAD));
        assert_eq!(joined.iter().map(|p| p.lines().count()).sum::<usize>(), 200);
    }
}
