//! Long-poll (SPEC §5, `:wait`; `Prefer: wait=N` in the dialects): answer
//! the moment an operation changes instead of making clients poll blindly.
//! The waiter registers with the node's `Waiters` *before* it reads, so a
//! change committed between the read and the wait is never missed; on
//! PostgreSQL the feed behind it carries changes made through any node.

use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::http::error::CoreError;
use crate::http::headers::IfNoneMatch;
use crate::model::{Kind, Operation, OperationId, Scope};
use crate::service::auth::Principal;
use crate::service::operations::{self, Policy};
use crate::service::waiters::Waiters;
use crate::store::Store;

/// Longest a single request may wait.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// What `:wait` waits when no timeout is given.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// How a read may wait.
pub struct Wait<'a> {
    /// At most this long (capped at `MAX_WAIT`).
    pub up_to: Duration,
    /// The client's `If-None-Match`: wait while it matches (a listed ETag
    /// is current, or `*`); without one, wait for a change from "now".
    pub known: Option<IfNoneMatch>,
    /// Cancelled when the server stops: answer at once then.
    pub stopping: &'a CancellationToken,
    /// The node's waiter registry (wakes this wait when its operation changes).
    pub waiters: &'a Waiters,
}

/// Reads an operation; with `wait`, first waits until it differs from the
/// known ETag. Answers at once when it already differs or is terminal.
///
/// A held wait keeps this future alive for up to a minute, thousands at
/// once: the reads are boxed (short, but their futures are large) and the
/// operation read first is dropped before waiting (it is read again at
/// the end), so what waits is a receiver, a timer and a few words.
pub async fn get_or_wait(
    store: &dyn Store,
    policy: &Policy,
    caller: &Principal,
    id: OperationId,
    visible: impl Fn(&Scope, &Kind) -> bool,
    wait: Option<Wait<'_>>,
) -> Result<Arc<Operation>, CoreError> {
    let Some(Wait { up_to: wait, known, stopping, waiters }) = wait.filter(|w| !w.up_to.is_zero()) else {
        return operations::get(store, policy, caller, id, &visible).await;
    };
    let mut woken = waiters.subscribe(id);
    let baseline = {
        let op = Box::pin(operations::get(store, policy, caller, id, &visible)).await?;
        if op.state.is_terminal() || known.is_some_and(|known| !known.matches(&op.etag())) {
            return Ok(op);
        }
        op.version
    };
    let deadline = tokio::time::Instant::now() + wait.min(MAX_WAIT);
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout_at(deadline, woken.recv()) => next,
            // The server is shutting down: answer now rather than hold it up.
            () = stopping.cancelled() => break,
        };
        match next {
            Ok(Ok(version)) if version <= baseline => continue,
            // Our change, a lagging receiver or a closed feed: read what is there now.
            Ok(Ok(_) | Err(RecvError::Lagged(_) | RecvError::Closed)) | Err(_) => break,
        }
    }
    drop(woken);
    Box::pin(operations::get(store, policy, caller, id, &visible)).await
}

/// Reads an operation once it is done (terminal), or at the end of
/// `wait.up_to` as it is then (Google's WaitOperation): a wait for the
/// next change, repeated until one ends it.
pub async fn get_when_done(
    store: &dyn Store,
    policy: &Policy,
    caller: &Principal,
    id: OperationId,
    visible: impl Fn(&Scope, &Kind) -> bool,
    wait: Wait<'_>,
) -> Result<Arc<Operation>, CoreError> {
    let deadline = tokio::time::Instant::now() + wait.up_to.min(MAX_WAIT);
    loop {
        let up_to = deadline.saturating_duration_since(tokio::time::Instant::now());
        let next = Wait { up_to, known: None, stopping: wait.stopping, waiters: wait.waiters };
        let op = Box::pin(get_or_wait(store, policy, caller, id, &visible, Some(next))).await?;
        if op.state.is_terminal() || up_to.is_zero() || wait.stopping.is_cancelled() {
            return Ok(op);
        }
    }
}

/// The wait a client asked for with `Prefer: wait=N` (RFC 7240), capped.
pub fn prefer_wait(headers: &HeaderMap) -> Option<Duration> {
    let seconds = crate::http::headers::preference(headers, "wait")?.parse::<u64>().ok()?;
    Some(Duration::from_secs(seconds).min(MAX_WAIT))
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
        headers.insert("prefer", "foo; wait=5".parse().unwrap());
        assert_eq!(prefer_wait(&headers), None, "a parameter of foo");
        headers.insert("prefer", "wait = \"5\"".parse().unwrap());
        assert_eq!(prefer_wait(&headers), Some(Duration::from_secs(5)));
        headers.insert("prefer", "wait=-1".parse().unwrap());
        assert_eq!(prefer_wait(&headers), None);
    }
}
