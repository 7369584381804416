//! Idempotent creation with OASIS Repeatable Requests, as Azure services
//! implement it: `Repeatability-Request-ID` + `Repeatability-First-Sent`,
//! answered with `Repeatability-Result: accepted|rejected`.
//!
//! The record lives in the store (durable, shared by every node), keyed by
//! the caller's key and the request id. Malformed headers → 400; First-Sent
//! outside the tracking window → 412; same id and same request → the first
//! response replayed; same id, different request → 400; the first attempt
//! still running → 409. A 5xx is not remembered, so a retry can succeed.

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
/// A pending first attempt older than this is presumed dead (its node
/// crashed) and a repeat may take over.
const STALE_AFTER: Duration = Duration::from_secs(60);
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
            Ok(RepeatBegin::InFlight { .. }) => rejected(CoreError::Conflict {
                code: "RepeatableRequestInProgress",
                message: "The first request with this Repeatability-Request-ID is still being processed; retry later."
                    .into(),
            }),
            Ok(RepeatBegin::Replay { response, .. }) => with_result(replay(response), "accepted"),
            Ok(RepeatBegin::Started) => {
                let response = create.await.unwrap_or_else(IntoResponse::into_response);
                let response = keep(app, &key, response).await;
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
/// returns it unchanged.
async fn keep(app: &AppState, key: &str, response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_KEPT_BODY).await else {
        let _ = app.store.abandon_repeatable(key).await;
        return rejected(CoreError::Internal(anyhow::anyhow!("response too large to keep")));
    };
    let outcome = if parts.status.is_server_error() {
        app.store.abandon_repeatable(key).await
    } else {
        let stored = StoredResponse {
            status: parts.status.as_u16(),
            headers: parts
                .headers
                .iter()
                .filter(|(name, _)| !matches!(name.as_str(), "x-ms-request-id" | "date"))
                .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_owned())))
                .collect(),
            body: String::from_utf8_lossy(&bytes).into_owned(),
        };
        app.store.finish_repeatable(key, &stored).await
    };
    if let Err(e) = outcome {
        tracing::warn!(error = %e, "could not record a repeatable request's outcome");
    }
    Response::from_parts(parts, Body::from(bytes))
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
