//! W3C trace context in and out: the `traceparent`/`tracestate` a request
//! brings, the `traceparent` an operation keeps from the request that
//! created it, and the header handed to workers and webhook receivers.

use std::collections::HashMap;
use std::future::Future;

use axum::http::HeaderMap;
use opentelemetry::Context;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;

tokio::task_local! {
    /// The valid `traceparent` the request being served brought, kept
    /// while tracing is off so a created operation still hands it on.
    static INCOMING: String;
}

/// The remote context a `traceparent` value names, if it is a valid one.
pub fn context_of(traceparent: &str) -> Option<Context> {
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    cx.span().span_context().is_valid().then_some(cx)
}

/// A `traceparent` in its canonical form, or `None` when it is not one.
pub fn parse_traceparent(value: &str) -> Option<String> {
    context_of(value).and_then(|cx| injected_header(&cx))
}

/// The `traceparent` that hands `cx` on to another process.
pub fn injected_header(cx: &Context) -> Option<String> {
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(cx, &mut carrier);
    carrier.remove("traceparent")
}

/// The trace context `headers` carry (an empty context when none).
pub fn parent_from(headers: &HeaderMap) -> Context {
    if !headers.contains_key("traceparent") {
        return Context::new();
    }
    TraceContextPropagator::new().extract(&opentelemetry_http::HeaderExtractor(headers))
}

/// Runs `work` (a request's handling while tracing is off) with the
/// `traceparent` its request brought.
pub async fn with_incoming<F: Future>(traceparent: String, work: F) -> F::Output {
    INCOMING.scope(traceparent, work).await
}

/// `work`, for a task of its own (a task-local does not follow a spawn),
/// with the `traceparent` an operation created now would keep.
pub fn carry<F: Future>(work: F) -> impl Future<Output = F::Output> {
    let traceparent = current_traceparent();
    async move {
        match traceparent {
            Some(traceparent) => with_incoming(traceparent, work).await,
            None => work.await,
        }
    }
}

/// The `traceparent` an operation created now keeps: the request span's
/// while tracing is on (so the operation's later spans are its
/// descendants), else the one the request brought, if any.
pub fn current_traceparent() -> Option<String> {
    if let Some(span_context) = super::request::handed_on() {
        return injected_header(&Context::new().with_remote_span_context(span_context));
    }
    INCOMING.try_with(Clone::clone).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_well_formed_traceparent_is_kept_and_in_canonical_form() {
        let valid = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        assert_eq!(parse_traceparent(valid).as_deref(), Some(valid));
        assert_eq!(
            parse_traceparent("00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01"),
            None,
            "W3C allows lowercase hex only"
        );
        assert_eq!(parse_traceparent("00-00000000000000000000000000000000-b7ad6b7169203331-01"), None);
        assert_eq!(parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01"), None);
        assert_eq!(parse_traceparent("garbage"), None);
        assert_eq!(parse_traceparent(""), None);
    }

    #[tokio::test]
    async fn the_incoming_traceparent_is_the_current_one_while_tracing_is_off() {
        assert_eq!(current_traceparent(), None);
        let seen = with_incoming("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(), async {
            current_traceparent()
        });
        assert_eq!(seen.await.as_deref(), Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"));
    }
}
