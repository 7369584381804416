//! Idempotent creation with OASIS Repeatable Requests, as Azure services
//! implement it: `Repeatability-Request-ID` + `Repeatability-First-Sent`,
//! answered with `Repeatability-Result: accepted|rejected`.
//!
//! The record lives in the store (durable, shared by every node), keyed by
//! the caller's key and the request id. Malformed headers → 400; First-Sent
//! outside the tracking window → 412; same id and same request → the first
//! response replayed; same id, different request → 400; the first attempt
//! still running → 409 with `Retry-After`. A 5xx is not remembered, so a
//! retry can succeed.
//!
//! A first attempt that cannot record its outcome (the database went away
//! mid-request, or fails over) keeps trying in the background and, while
//! it runs, retries are told to wait. Once the database is back its
//! record is finished or cleared within a second, and a retry replays the
//! outcome or runs the create again. Running it again is safe: the
//! operation id follows from the request id, so a create that committed
//! unseen is found, not made twice. A record whose node died is taken over
//! after `STALE_AFTER`.

use std::time::{Duration, SystemTime};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::Error;
use crate::http::error::CoreError;
use crate::model::OperationId;
use crate::service::auth::Principal;
use crate::service::state::AppState;
use crate::store::{RepeatBegin, StoredResponse};
use uuid::Uuid;

const REQUEST_ID: &str = "repeatability-request-id";
const FIRST_SENT: &str = "repeatability-first-sent";
const RESULT: &str = "repeatability-result";
/// Namespace of the name-based ids of repeatable creates (any fixed UUID).
const REPEATABLE_NAMESPACE: Uuid = Uuid::from_u128(0x6c6f_6e67_7275_6e00_7265_7065_6174_0001);
/// Longest a first attempt runs before it answers 503 (a write it sent
/// may still commit: a retry then finds the operation by its id).
const ATTEMPT_LIMIT: Duration = Duration::from_secs(10);
/// A pending first attempt older than this is dead (its node crashed) and
/// a repeat takes over: the attempt limit, and 5 s for nodes whose clocks
/// disagree.
const STALE_AFTER: Duration = Duration::from_secs(15);
/// A first attempt stops trying to record its outcome this long before a
/// repeat may take its record over.
const SETTLE_MARGIN: Duration = Duration::from_secs(2);
/// Responses larger than this are not kept (a create's is a few hundred bytes).
const MAX_KEPT_BODY: usize = 64 * 1024;

/// The repeatability headers of a request, validated.
pub struct Repeatable {
    request_id: String,
}

impl Repeatable {
    /// `None` when the request carries neither header.
    pub fn from_headers(headers: &HeaderMap, app: &AppState) -> Result<Option<Repeatable>, CoreError> {
        let now = SystemTime::UNIX_EPOCH + Duration::from_nanos(app.policy.clock.now().unix_nanos().max(0) as u64);
        Repeatable::parse(headers, now, app.policy.repeatability_window)
    }

    /// The headers checked against `now` and a tracking `window`; no state
    /// needed (the seam the fuzz target drives).
    pub fn parse(headers: &HeaderMap, now: SystemTime, window: Duration) -> Result<Option<Repeatable>, CoreError> {
        let (id, sent) = (headers.get(REQUEST_ID), headers.get(FIRST_SENT));
        let (id, sent) = match (id, sent) {
            (None, None) => return Ok(None),
            (Some(id), Some(sent)) => (id, sent),
            _ => return Err(bad("Repeatability-Request-ID and Repeatability-First-Sent must be sent together.")),
        };
        let request_id = id
            .to_str()
            .ok()
            .filter(|v| (1..=128).contains(&v.len()) && v.chars().all(|c| c.is_ascii_graphic()))
            .ok_or_else(|| {
                bad("Repeatability-Request-ID must be 1 to 128 visible ASCII characters (a UUID is best).")
            })?;
        let first_sent = sent.to_str().ok().and_then(|v| httpdate::parse_http_date(v).ok()).ok_or_else(|| {
            bad("Repeatability-First-Sent must be an HTTP date, e.g. 'Tue, 15 Nov 1994 08:12:31 GMT'.")
        })?;
        let age = now.duration_since(first_sent).unwrap_or_default();
        let ahead = first_sent.duration_since(now).unwrap_or_default();
        if age > window || ahead > Duration::from_secs(60) {
            let message = format!(
                "Repeatability-First-Sent is outside the {} s tracking window; send the request as a new one.",
                window.as_secs()
            );
            return Err(CoreError::PreconditionFailed { message });
        }
        Ok(Some(Repeatable { request_id: request_id.to_owned() }))
    }

    /// The operation id a repeatable create uses when the client chose none:
    /// a name-based UUID of the caller's key and the request id.
    pub fn operation_id(&self, caller: &Principal) -> OperationId {
        let name = format!("{}:{}", caller.key_id, self.request_id);
        OperationId::from_uuid(Uuid::new_v5(&REPEATABLE_NAMESPACE, name.as_bytes()))
    }

    /// Runs `create` once per request id: the first time for real, then by
    /// replaying its response.
    pub async fn run<F>(
        self,
        app: &AppState,
        caller: &Principal,
        headers: &HeaderMap,
        body: &Bytes,
        create: F,
    ) -> Response
    where
        F: Future<Output = Result<Response, Error>>,
    {
        let key = format!("{}:{}", caller.key_id, self.request_id);
        let fingerprint = fingerprint(headers, body);
        let now = app.policy.clock.now();
        let stale_before = crate::model::Timestamp::from_unix_nanos(now.unix_nanos() - STALE_AFTER.as_nanos() as i64);
        let begun = app
            .store
            .begin_repeatable(&key, &fingerprint, now, stale_before, now.plus(app.policy.repeatability_window))
            .await;
        match begun {
            Err(e) => rejected(CoreError::from(e)),
            Ok(RepeatBegin::InFlight { fingerprint: first }) if first != fingerprint => rejected(different()),
            Ok(RepeatBegin::Replay { fingerprint: first, .. }) if first != fingerprint => rejected(different()),
            Ok(RepeatBegin::InFlight { .. }) => {
                let mut response = rejected(CoreError::Conflict {
                    code: "RepeatableRequestInProgress",
                    message: "The first request with this Repeatability-Request-ID is still being processed; \
                              retry later."
                        .into(),
                });
                response.headers_mut().insert(axum::http::header::RETRY_AFTER, HeaderValue::from(1));
                response
            }
            Ok(RepeatBegin::Replay { response, .. }) => with_result(replay(response), "accepted"),
            Ok(RepeatBegin::Started) => {
                let started = tokio::time::Instant::now();
                let response = match tokio::time::timeout(ATTEMPT_LIMIT, create).await {
                    Ok(done) => done.unwrap_or_else(IntoResponse::into_response),
                    Err(_) => Error(CoreError::Unavailable("the create did not finish in time".into())).into_response(),
                };
                let response = keep(app, &key, response, started + STALE_AFTER - SETTLE_MARGIN).await;
                with_result(response, "accepted")
            }
        }
    }
}

/// What makes two requests "the same": the body and the chosen id.
fn fingerprint(headers: &HeaderMap, body: &Bytes) -> String {
    let mut hash = Sha256::new();
    // Equal JSON with other whitespace or key order is the same request.
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(json) => hash.update(json.to_string().as_bytes()),
        Err(_) => hash.update(body),
    }
    hash.update(b"\0");
    if let Some(id) = headers.get("operation-id") {
        hash.update(id.as_bytes());
    }
    format!("{:x}", hash.finalize())
}

/// Stores the first response (unless it is a 5xx, worth retrying) and
/// returns it unchanged. What cannot be stored now is stored in the
/// background, until `give_up`.
async fn keep(app: &AppState, key: &str, response: Response, give_up: tokio::time::Instant) -> Response {
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_KEPT_BODY).await else {
        settle(app, key, Outcome::Abandoned, give_up).await;
        return rejected(CoreError::Internal(anyhow::anyhow!("response too large to keep")));
    };
    let outcome = if parts.status.is_server_error() {
        Outcome::Abandoned
    } else {
        Outcome::Finished(StoredResponse {
            status: parts.status.as_u16(),
            headers: parts
                .headers
                .iter()
                .filter(|(name, _)| !matches!(name.as_str(), "x-ms-request-id" | "date"))
                .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_owned())))
                .collect(),
            body: String::from_utf8_lossy(&bytes).into_owned(),
        })
    };
    settle(app, key, outcome, give_up).await;
    Response::from_parts(parts, Body::from(bytes))
}

/// How a first attempt ended, for its record.
enum Outcome {
    /// A response to replay to every repeat.
    Finished(StoredResponse),
    /// Nothing to replay (a 5xx): the record goes, and a repeat runs anew.
    Abandoned,
}

/// Records `outcome`; if the store cannot take it now, keeps trying in a
/// task of its own (backing off to 1 s) until it can or until `give_up`.
async fn settle(app: &AppState, key: &str, outcome: Outcome, give_up: tokio::time::Instant) {
    if record(app, key, &outcome).await.is_ok() {
        return;
    }
    tracing::warn!(key, "cannot record a repeatable request's outcome yet; retrying in the background");
    let (app, key) = (app.clone(), key.to_owned());
    tokio::spawn(async move {
        let mut pause = Duration::from_millis(100);
        while tokio::time::Instant::now() + pause < give_up {
            tokio::time::sleep(pause).await;
            match record(&app, &key, &outcome).await {
                Ok(()) => return,
                Err(_) => pause = (pause * 2).min(Duration::from_secs(1)),
            }
        }
        tracing::warn!(key, "gave up recording a repeatable request's outcome; a repeat takes its record over");
    });
}

async fn record(app: &AppState, key: &str, outcome: &Outcome) -> Result<(), crate::store::StoreError> {
    match outcome {
        Outcome::Finished(stored) => app.store.finish_repeatable(key, stored).await,
        Outcome::Abandoned => app.store.abandon_repeatable(key).await,
    }
}

fn replay(stored: StoredResponse) -> Response {
    let mut response = Response::new(Body::from(stored.body));
    *response.status_mut() = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    for (name, value) in stored.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

fn with_result(mut response: Response, result: &'static str) -> Response {
    response.headers_mut().insert(RESULT, HeaderValue::from_static(result));
    response
}

/// A refused repeatable request, in the native envelope.
pub fn rejected(core: CoreError) -> Response {
    with_result(Error(core).into_response(), "rejected")
}

fn bad(message: &str) -> CoreError {
    CoreError::BadRequest { code: "InvalidRepeatabilityHeader", message: message.to_owned(), target: None }
}

fn different() -> CoreError {
    CoreError::BadRequest {
        code: "RepeatableRequestMismatch",
        message: "This Repeatability-Request-ID was used for a different request.".into(),
        target: None,
    }
}
