//! Webhook delivery (SPEC §5): a durable outbox fed from the change log.
//!
//! Every node runs both steps; both are safe to run concurrently:
//! - `enqueue_once` reads the change log after the shared cursor and queues
//!   one delivery per matching (webhook, change), moving the cursor in the
//!   same transaction (compare-and-swap: one node wins each batch);
//! - `deliver_once` takes due deliveries (a CAS on `next_at` gives each
//!   attempt to one node), POSTs them signed, and records the outcome:
//!   delivered on 2xx, else retried with backoff and jitter for 24 h, then dead.
//!
//! A change that committed is in the log, so a restart loses nothing: at
//! least once, with the delivery id for receivers to deduplicate. Each
//! attempt carries the operation's trace context (`traceparent`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use tokio::sync::Semaphore;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use uuid::Uuid;

use crate::api::wire::OperationBody;
use crate::model::{Delivery, DeliveryState, Timestamp, Webhook};
use crate::service::operations::Policy;
use crate::store::{Store, StoreError};
use crate::telemetry::otel;

/// Header carrying `sha256=<hex HMAC-SHA256 of the body with the secret>`.
pub const SIGNATURE_HEADER: &str = "X-Longrun-Signature";
/// Header carrying the attempt's time (also inside the signed body), so
/// receivers can refuse replays.
pub const TIMESTAMP_HEADER: &str = "X-Longrun-Timestamp";
/// Header carrying the delivery id (stable across retries).
pub const DELIVERY_HEADER: &str = "X-Longrun-Delivery";

/// Changes read from the log per enqueue step.
const LOG_BATCH: u32 = 500;
/// Deliveries attempted per step.
const SEND_BATCH: u32 = 32;
/// Deliveries in flight at once per node.
pub const SEND_CONCURRENCY: usize = 16;
/// How long one attempt may take, and holds its delivery from other nodes.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Queues deliveries for the changes logged since the cursor; returns how many.
pub async fn enqueue_once(store: &dyn Store, policy: &Policy) -> Result<usize, StoreError> {
    let hooks = store.list_webhooks().await?;
    if hooks.is_empty() {
        return Ok(0);
    }
    let cursor = store.webhook_cursor().await?;
    let changes = store.changes_since(None, cursor, LOG_BATCH).await?;
    let Some(last) = changes.last() else { return Ok(0) };
    let to = last.seq;
    let now = policy.clock.now();
    let mut deliveries = Vec::new();
    for change in &changes {
        let matching: Vec<&Webhook> = hooks
            .iter()
            .filter(|h| change.seq > h.start_seq && h.scope.as_ref().is_none_or(|s| *s == change.scope))
            .collect();
        if matching.is_empty() {
            continue;
        }
        // "Terminal" webhooks want the change that ended the operation.
        let ended = match store.get_operation(change.id).await? {
            Some(op) => op.state.is_terminal() && op.version == change.version,
            None => false,
        };
        for hook in matching.into_iter().filter(|h| h.all_changes || ended) {
            deliveries.push(Delivery {
                id: format!("dlv_{}", Uuid::now_v7().simple()),
                webhook_id: hook.id.clone(),
                operation_id: change.id,
                version: change.version,
                seq: change.seq,
                attempts: 0,
                next_at: now,
                state: DeliveryState::Pending,
                last_status: None,
                last_error: None,
                created_at: now,
            });
        }
    }
    let queued = deliveries.len();
    Ok(if store.enqueue_deliveries(cursor, to, &deliveries).await? { queued } else { 0 })
}

/// Starts the due deliveries, each in a task of its own holding one of
/// `slots` (so one slow receiver, up to ATTEMPT_TIMEOUT, never holds up
/// another's), which tells `finished` when its outcome is recorded (a retry
/// may be due before anything else); returns how many it started.
pub async fn deliver_once(
    store: &Arc<dyn Store>,
    policy: &Policy,
    client: &reqwest::Client,
    slots: &Arc<Semaphore>,
    finished: &Arc<tokio::sync::Notify>,
) -> Result<usize, StoreError> {
    let free = slots.available_permits().min(SEND_BATCH as usize) as u32;
    if free == 0 {
        return Ok(0);
    }
    let now = policy.clock.now();
    let due = store.due_deliveries(now, free).await?;
    if due.is_empty() {
        return Ok(0);
    }
    let hooks: HashMap<String, Webhook> = store.list_webhooks().await?.into_iter().map(|h| (h.id.clone(), h)).collect();
    let mut started = 0;
    for delivery in due {
        let Ok(slot) = slots.clone().try_acquire_owned() else { break };
        if !store.claim_delivery(&delivery.id, delivery.next_at, now.plus(ATTEMPT_TIMEOUT * 2)).await? {
            continue; // another node is on it
        }
        let (store, client, hook) = (store.clone(), client.clone(), hooks.get(&delivery.webhook_id).cloned());
        let finished = finished.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let outcome = attempt(store.as_ref(), &client, hook.as_ref(), &delivery, now).await;
            let next = match outcome {
                Ok(status) => delivery.delivered(status),
                Err((status, error)) => delivery.failed(now, status, error, rand::random::<f64>()),
            };
            metrics::counter!("longrun_webhook_deliveries_total", "outcome" => next.state.as_str()).increment(1);
            // If this fails the claim lapses and the delivery is attempted again.
            if let Err(e) = store.update_delivery(&next).await {
                tracing::warn!(error = %e, delivery = %next.id, "cannot record a delivery's outcome; it will be retried");
            }
            finished.notify_one();
        });
        started += 1;
    }
    Ok(started)
}

/// One POST; the receiver's status on 2xx, else what went wrong.
async fn attempt(
    store: &dyn Store,
    client: &reqwest::Client,
    hook: Option<&Webhook>,
    delivery: &Delivery,
    now: Timestamp,
) -> Result<u16, (Option<u16>, String)> {
    let hook = hook.ok_or((None, "the webhook was removed".to_owned()))?;
    let op = store.get_operation(delivery.operation_id).await.map_err(|e| (None, e.to_string()))?;
    let timestamp = now.to_rfc3339_ticks();
    let body = json!({
        "id": delivery.id,
        "type": "operation.changed",
        "timestamp": timestamp,
        "version": delivery.version,
        "operation": op.as_deref().map(OperationBody::from),
    });
    let body = serde_json::to_vec(&body).expect("JSON values serialize");
    let (span, traceparent) = attempt_span(hook, delivery, op.as_deref().and_then(|op| op.traceparent.as_deref()));
    let mut request = client
        .post(&hook.url)
        .timeout(ATTEMPT_TIMEOUT)
        .header("content-type", "application/json")
        .header(SIGNATURE_HEADER, format!("sha256={}", sign(&hook.secret, &body)))
        .header(TIMESTAMP_HEADER, timestamp)
        .header(DELIVERY_HEADER, &delivery.id);
    if let Some(traceparent) = traceparent {
        request = request.header("traceparent", traceparent);
    }
    let sent = request.body(body).send().instrument(span.clone()).await;
    let response = sent.map_err(|e| {
        span.record("error.type", "connection");
        span.record("otel.status_code", "ERROR");
        (None, e.to_string())
    })?;
    let status = response.status();
    span.record("http.response.status_code", i64::from(status.as_u16()));
    if !status.is_success() {
        span.record("error.type", status.as_str());
        span.record("otel.status_code", "ERROR");
    }
    if status.is_success() {
        Ok(status.as_u16())
    } else {
        Err((Some(status.as_u16()), format!("the receiver answered {status}")))
    }
}

/// The client span of one attempt while tracing is on (a child of the
/// trace the operation was created in), and the `traceparent` the
/// receiver gets: the span's, else the operation's own.
fn attempt_span(hook: &Webhook, delivery: &Delivery, created_in: Option<&str>) -> (tracing::Span, Option<String>) {
    if !otel::enabled() {
        return (tracing::Span::none(), created_in.map(str::to_owned));
    }
    let url = reqwest::Url::parse(&hook.url).ok();
    let span = tracing::info_span!(
        target: otel::SPAN_TARGET,
        "webhook delivery",
        otel.name = "POST",
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        http.request.method = "POST",
        http.request.resend_count = (delivery.attempts > 0).then_some(i64::from(delivery.attempts)),
        http.response.status_code = tracing::field::Empty,
        error.type = tracing::field::Empty,
        server.address = url.as_ref().and_then(|u| u.host_str().map(str::to_owned)),
        server.port = url.as_ref().and_then(|u| u.port_or_known_default()),
        longrun.operation.id = %delivery.operation_id,
        longrun.webhook.id = %hook.id,
        longrun.delivery.id = %delivery.id,
    );
    if let Some(cx) = created_in.and_then(otel::context_of) {
        let _ = span.set_parent(cx);
    }
    let traceparent = otel::injected_header(&span.context()).or_else(|| created_in.map(str::to_owned));
    (span, traceparent)
}

/// Hex HMAC-SHA256 of `body` keyed with `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    format!("{:x}", mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_like_the_rfc_4231_test_vector() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
