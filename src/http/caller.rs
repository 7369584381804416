//! Who the request being served turned out to be, for its access-log line:
//! authentication notes it, the front middleware reads it when the request
//! ends. A task-local, so a handler's future carries it wherever it runs.

use std::cell::RefCell;
use std::future::Future;

tokio::task_local! {
    /// Who the request being served turned out to be, for its access-log
    /// line: set by authentication, read by the logging middleware.
    static CALLER: RefCell<Option<Caller>>;
}

/// The caller of a request as the access log shows it: the key's public id
/// and the scope it reaches (never the secret).
#[derive(Clone, Debug)]
pub struct Caller {
    /// The key's public id.
    pub key_id: String,
    /// `*` or one scope.
    pub scope: String,
}

/// Records the authenticated caller of the current request (no-op outside one).
pub fn note_caller(key_id: &str, scope: &str) {
    let _ = CALLER.try_with(|c| *c.borrow_mut() = Some(Caller { key_id: key_id.to_owned(), scope: scope.to_owned() }));
}

/// Runs `work` as one request's handling and returns its outcome with the
/// caller authentication noted meanwhile, if any.
pub async fn noting_caller<F: Future>(work: F) -> (F::Output, Option<Caller>) {
    CALLER
        .scope(RefCell::new(None), async move {
            let outcome = work.await;
            (outcome, CALLER.with(|c| c.borrow_mut().take()))
        })
        .await
}
