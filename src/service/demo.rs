//! The script `serve --demo` attaches to operations started through the
//! emulated initiators, so an unchanged SDK sees a whole flow with no worker:
//! NotStarted → Running 40 % after 1 s → Succeeded after 3 s; and the
//! lookups that serve the resources those flows make.

use std::sync::Arc;
use std::time::Duration;

use crate::http::error::CoreError;
use crate::model::{KeyScope, Kind, Operation, OperationId, Scope, ScriptStep, State};
use crate::service::auth::Principal;
use crate::service::operations::Policy;
use crate::store::{ListFilter, Store};

/// The default flow, ending with `resource_location` set.
pub fn default_script(resource_location: Option<String>) -> Vec<ScriptStep> {
    vec![
        ScriptStep {
            after: Duration::from_secs(1),
            state: State::Running,
            percent_complete: Some(40.0),
            resource_location: None,
            error: None,
        },
        ScriptStep {
            after: Duration::from_secs(3),
            state: State::Succeeded,
            percent_complete: Some(100.0),
            resource_location,
            error: None,
        },
    ]
}

/// The most operations a resource lookup reads per kind, newest first: the
/// emulator finds resources by scanning the operations that made them, so
/// one made before the newest `SCAN_LIMIT` of its kind in its scope is
/// reported missing.
pub const SCAN_LIMIT: u32 = 10_000;

/// The finished operation `id` of `kind` in the caller's reach: the
/// resource an initiator names after its own operation (a Face snapshot, a
/// Sphere image) exists once that operation has succeeded.
pub async fn made_by(
    store: &dyn Store,
    policy: &Policy,
    caller: &Principal,
    id: OperationId,
    kind: &str,
) -> Result<Option<Arc<Operation>>, CoreError> {
    match crate::service::operations::get(store, policy, caller, id, |_, k| k.as_ref() == kind).await {
        Ok(op) if succeeded(op.state) => Ok(Some(op)),
        Ok(_) | Err(CoreError::NoSuchOperation { .. } | CoreError::OperationExpired { .. }) => Ok(None),
        Err(other) => Err(other),
    }
}

/// The newest operation in `scope` (`None`: every scope, for `*` keys), of
/// one of `kinds`, whose resource location is `resource` (within
/// `SCAN_LIMIT` per kind).
pub async fn newest_on(
    store: &dyn Store,
    caller: &Principal,
    scope: Option<&Scope>,
    kinds: &[&str],
    resource: &str,
) -> Result<Option<Operation>, CoreError> {
    let reached = match scope {
        Some(scope) => caller.can_read(scope),
        None => caller.scope == KeyScope::All,
    };
    if !reached {
        return Ok(None);
    }
    let mut newest: Option<Operation> = None;
    for kind in kinds {
        let mut filter = ListFilter {
            scope: scope.cloned(),
            kind: Some(Kind::parse(kind).expect("a valid literal kind")),
            limit: 500,
            ..ListFilter::default()
        };
        let mut read = 0;
        while read < SCAN_LIMIT {
            let page = store.list_operations(&filter).await?;
            read += page.len() as u32;
            let full = page.len() as u32 == filter.limit;
            filter.after = page.last().map(|op| (op.created_at, op.id));
            if let Some(op) = page.into_iter().find(|op| op.resource_location.as_deref() == Some(resource)) {
                if newest.as_ref().is_none_or(|n| (op.created_at, op.id) > (n.created_at, n.id)) {
                    newest = Some(op);
                }
                break;
            }
            if !full {
                break;
            }
        }
    }
    Ok(newest)
}

/// Whether an operation in `state` made its resource.
pub fn succeeded(state: State) -> bool {
    matches!(state, State::Succeeded | State::CompleteWithErrors)
}
