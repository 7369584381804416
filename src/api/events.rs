//! Server-sent events (SPEC §5): every change of one operation, or of every
//! operation in a scope, as it commits, on this node or (PostgreSQL) any.
//!
//! - `GET /v1/operations/{id}/events`: event id = the operation's version.
//!   A (re)connect first sends the current state when it is newer than
//!   `Last-Event-ID`: nothing is missed, superseded versions are skipped.
//! - `GET /v1/events?scope=…`: event id = the change-log position. A
//!   reconnect with `Last-Event-ID` replays the logged changes after it
//!   (within `CHANGE_LOG_KEEP`), each as the operation's state now. Live
//!   changes are read from the log too (the feed only says when), so a
//!   stream follows log order exactly.
//!
//! Data is the native operation JSON. A comment line every 15 s keeps
//! proxies from closing idle streams; streams end when the server stops.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::wire::OperationBody;
use super::{Error, caller};
use crate::http::error::CoreError;
use crate::model::{Operation, OperationId, Scope};
use crate::service::auth::Principal;
use crate::service::operations;
use crate::service::state::AppState;

const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Changes read from the log per query while catching up.
const REPLAY_BATCH: u32 = 500;
/// Events buffered for a slow client before the producer waits.
const BUFFER: usize = 64;

/// One server-sent event, as the OpenAPI document describes the stream.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = Longrun::ServerSentEvent)]
pub struct ServerSentEvent {
    /// Always `operation`.
    pub event: String,
    /// The event id: a version, or a change-log position.
    pub id: String,
    /// The native operation JSON, as text.
    pub data: String,
}

/// Streams one operation's changes.
#[utoipa::path(
    get,
    path = "/v1/operations/{id}/events",
    tag = "Native",
    operation_id = "Operations_Events",
    params(("id" = String, Path, format = Uuid), ("Last-Event-ID" = Option<String>, Header, description = "The last version received")),
    responses(
        (status = 200, description = "An event stream (text/event-stream) of the operation's states", content_type = "text/event-stream", body = ServerSentEvent),
        (status = 400, description = "Malformed request", body = crate::dialect::devcenter::wire::ErrorResponse),
        (status = 404, description = "No such operation in the caller's reach", body = crate::dialect::devcenter::wire::ErrorResponse),
        super::CommonErrors,
    ),
    security(("bearer" = []))
)]
pub async fn operation_events(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let caller = caller(&app, &headers).await?;
    let id = OperationId::parse(&id).ok_or_else(|| {
        CoreError::bad_request("InvalidParameter", "id", format!("operation id '{id}' is not a UUID"))
    })?;
    let mut changes = app.store.feed().subscribe();
    // Read once up front: unknown or foreign ids are a plain 404, not a stream.
    let first = operations::get(app.store.as_ref(), &app.policy, &caller, id, |_, _| true).await?;
    let last_seen = last_event_id(&headers).unwrap_or(0);
    let (events, stream) = channel();
    let stopping = CancellationToken::clone(&app.stopping);
    let app_task = app.clone();
    tokio::spawn(async move {
        let app = app_task;
        let mut sent = last_seen;
        let mut current = Some(first);
        loop {
            if let Some(op) = current.take().filter(|op| op.version > sent) {
                sent = op.version;
                if events.send(event(&op, op.version)).await.is_err() {
                    return; // the client left
                }
            }
            let next = tokio::select! {
                next = changes.recv() => next,
                () = events.closed() => return, // the client left
            };
            match next {
                Ok(change) if change.id != id || change.version <= sent => continue,
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            }
            match operations::get(app.store.as_ref(), &app.policy, &caller, id, |_, _| true).await {
                Ok(op) => current = Some(op),
                Err(_) => return, // expired or purged meanwhile: the stream ends
            }
        }
    });
    Ok(respond(stopping, stream))
}

/// Streams every change in a scope.
#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "Native",
    operation_id = "Events_Stream",
    params(
        ("scope" = Option<String>, Query, description = "The scope to watch (required unless the key reaches every scope)"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this change-log position"),
    ),
    responses(
        (status = 200, description = "An event stream (text/event-stream) of the scope's changes", content_type = "text/event-stream", body = ServerSentEvent),
        (status = 400, description = "Malformed request", body = crate::dialect::devcenter::wire::ErrorResponse),
        (status = 403, description = "The key does not reach this scope", body = crate::dialect::devcenter::wire::ErrorResponse),
        super::CommonErrors,
    ),
    security(("bearer" = []))
)]
pub async fn scope_events(
    State(app): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let caller = caller(&app, &headers).await?;
    let scope = requested_scope(&caller, query.as_deref())?;
    let mut changes = app.store.feed().subscribe();
    let mut sent = match last_event_id(&headers) {
        Some(last) => last,
        // A fresh stream starts now: everything after the log's current end
        // (the end of the whole log is at least the end of this scope's).
        None => app.store.latest_change_seq().await.map_err(CoreError::from)?,
    };
    let (events, stream) = channel();
    let stopping = CancellationToken::clone(&app.stopping);
    tokio::spawn(async move {
        let mut catch_up = true;
        loop {
            if catch_up {
                // Replay what the log holds after the last event sent.
                loop {
                    let Ok(logged) = app.store.changes_since(scope.as_ref(), sent, REPLAY_BATCH).await else { return };
                    let done = logged.len() < REPLAY_BATCH as usize;
                    for change in logged {
                        sent = change.seq;
                        if !forward(&app, &caller, &events, change.id, change.seq).await {
                            return;
                        }
                    }
                    if done {
                        break;
                    }
                }
                catch_up = false;
            }
            let next = tokio::select! {
                next = changes.recv() => next,
                () = events.closed() => return, // the client left
            };
            match next {
                // Another scope's, or one the caller may not read.
                Ok(change) if scope.as_ref().is_some_and(|s| *s != change.scope) || !caller.can_read(&change.scope) => {
                }
                // News (or the feed lagged): the log says what, in log order.
                // The feed comes in commit order, which on PostgreSQL is not
                // log order; reading the log after the last position sent
                // never skips a change that committed late, nor sends one twice.
                Ok(_) | Err(RecvError::Lagged(_)) => {
                    // One read for everything already announced.
                    while changes.try_recv().is_ok() {}
                    catch_up = true;
                }
                Err(RecvError::Closed) => return,
            }
        }
    });
    Ok(respond(stopping, stream))
}

/// Sends the operation's current state as event `seq`; false when the client left.
async fn forward(app: &AppState, caller: &Principal, events: &mpsc::Sender<Event>, id: OperationId, seq: i64) -> bool {
    match operations::get(app.store.as_ref(), &app.policy, caller, id, |_, _| true).await {
        Ok(op) => events.send(event(&op, seq)).await.is_ok(),
        Err(_) => true, // expired, purged or not the caller's: nothing to say
    }
}

pub(super) fn requested_scope(caller: &Principal, query: Option<&str>) -> Result<Option<Scope>, CoreError> {
    let mut scope = None;
    for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match name.as_ref() {
            "scope" => {
                scope = Some(Scope::parse(&value).map_err(|e| CoreError::bad_request("InvalidParameter", "scope", e))?)
            }
            other => {
                return Err(CoreError::bad_request(
                    "InvalidParameter",
                    other,
                    format!("unknown query parameter '{other}'"),
                ));
            }
        }
    }
    caller.narrow(scope, "watch")
}

fn last_event_id(headers: &HeaderMap) -> Option<i64> {
    headers.get("last-event-id")?.to_str().ok()?.trim().parse().ok().filter(|n: &i64| *n >= 0)
}

fn event(op: &Operation, id: i64) -> Event {
    let data = serde_json::to_string(&OperationBody::from(op)).expect("operations serialize");
    Event::default().event("operation").id(id.to_string()).data(data)
}

fn channel() -> (mpsc::Sender<Event>, impl Stream<Item = Result<Event, Infallible>>) {
    let (sender, receiver) = mpsc::channel(BUFFER);
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|event| (Ok(event), receiver))
    });
    (sender, stream)
}

fn respond(
    stopping: CancellationToken,
    stream: impl Stream<Item = Result<Event, Infallible>> + Send + 'static,
) -> Response {
    use futures_util::StreamExt;
    // End the stream when the server shuts down, so it does not hold the
    // graceful shutdown open.
    let stopping = stopping.cancelled_owned();
    let stream = stream.take_until(stopping);
    Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response()
}
