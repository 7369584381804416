//! Long-poll (SPEC §5, `:wait`; `Prefer: wait=N` in the dialects): answer
//! the moment an operation changes instead of making clients poll blindly.
//! The waiter registers with the node's `Waiters` *before* it reads, so a
//! change committed between the read and the wait is never missed; on
//! PostgreSQL the feed behind it carries changes made through any node.

use std::time::Duration;

use axum::http::{HeaderMap, header};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::auth::Principal;
use crate::error::CoreError;
use crate::model::{Kind, Operation, OperationId, Scope};
use crate::ops::{self, Policy};
use crate::store::Store;
use crate::waiters::Waiters;

/// Longest a single request may wait.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// What `:wait` waits when no timeout is given.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// How a read may wait.
pub struct Wait<'a> {
    /// At most this long (capped at `MAX_WAIT`).
    pub up_to: Duration,
    /// The ETag the client has; without one, "what it is now".
    pub known_etag: Option<&'a str>,
    /// Cancelled when the server stops: answer at once then.
    pub stopping: &'a CancellationToken,
    /// The node's waiter registry (wakes this wait when its operation changes).
    pub waiters: &'a Waiters,
}

/// Reads an operation; with `wait`, first waits until it differs from the
/// known ETag. Answers at once when it already differs or is terminal.
pub async fn get_or_wait(
    store: &dyn Store,
    policy: &Policy,
    caller: &Principal,
    id: OperationId,
    visible: impl Fn(&Scope, &Kind) -> bool,
    wait: Option<Wait<'_>>,
) -> Result<Operation, CoreError> {
    let Some(Wait { up_to: wait, known_etag, stopping, waiters }) = wait.filter(|w| !w.up_to.is_zero()) else {
        return ops::get(store, policy, caller, id, &visible).await;
    };
    let mut woken = waiters.subscribe(id);
    let op = ops::get(store, policy, caller, id, &visible).await?;
    let baseline = match known_etag {
        Some(etag) if etag != op.etag() => return Ok(op),
        _ => op.version,
    };
    if op.state.is_terminal() {
        return Ok(op);
    }
    let deadline = tokio::time::Instant::now() + wait.min(MAX_WAIT);
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout_at(deadline, woken.recv()) => next,
            // The server is shutting down: answer now rather than hold it up.
            () = stopping.cancelled() => return ops::get(store, policy, caller, id, &visible).await,
        };
        match next {
            Ok(Ok(version)) if version <= baseline => continue,
            // Our change, a lagging receiver or a closed feed: read what is there now.
            Ok(Ok(_) | Err(RecvError::Lagged(_) | RecvError::Closed)) | Err(_) => {
                return ops::get(store, policy, caller, id, &visible).await;
            }
        }
    }
}

/// The wait a client asked for with `Prefer: wait=N` (RFC 7240), capped.
pub fn prefer_wait(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .find_map(|token| token.trim().strip_prefix("wait=")?.trim().parse::<u64>().ok())
        .map(|seconds| Duration::from_secs(seconds).min(MAX_WAIT))
}

/// The ETag of a conditional request, if it names exactly one.
pub fn if_none_match(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::IF_NONE_MATCH)?.to_str().ok()?.trim();
    let value = value.strip_prefix("W/").unwrap_or(value);
    (!value.contains(',') && value != "*").then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_prefer_wait_preference() {
        let mut headers = HeaderMap::new();
        assert_eq!(prefer_wait(&headers), None);
        headers.insert("prefer", "respond-async, wait=10".parse().unwrap());
        assert_eq!(prefer_wait(&headers), Some(Duration::from_secs(10)));
        headers.insert("prefer", "wait=3600".parse().unwrap());
        assert_eq!(prefer_wait(&headers), Some(MAX_WAIT));
        headers.insert("prefer", "return=minimal".parse().unwrap());
        assert_eq!(prefer_wait(&headers), None);
    }
}
