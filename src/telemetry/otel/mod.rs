//! OpenTelemetry traces, off unless an OTLP endpoint is given: the
//! exporter pipeline, whether tracing is on, and the attributes handlers
//! add to the request's span. A request's span is made with the
//! OpenTelemetry API (`request`); background work's are `tracing` spans
//! with target `longrun::span`, bridged by `tracing-opentelemetry`. While
//! tracing is off none is made, so it costs one relaxed load per request.

mod export;
mod ids;
mod outage;
mod propagation;
mod request;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

pub use ids::current_ids;
pub use outage::collector_down;
pub use propagation::{
    carry, context_of, current_traceparent, injected_header, parent_from, parse_traceparent, with_incoming,
};
pub use request::{RequestSpan, join_operation_trace, serving};

/// The `tracing` target of longrun's spans (kept apart from log targets,
/// so `RUST_LOG` never switches traces off).
pub const SPAN_TARGET: &str = "longrun::span";

static ENABLED: AtomicBool = AtomicBool::new(false);
static TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// The tracer request spans are made with (set by `start`).
fn tracer() -> &'static SdkTracer {
    TRACER.get().expect("tracing is on only after start")
}

/// Whether spans are being made and exported.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Shuts the exporter down when dropped: the spans still queued get one
/// bounded try to leave (the SDK waits at most 5 s for it).
pub struct TracingGuard {
    provider: SdkTracerProvider,
}

impl Drop for TracingGuard {
    fn drop(&mut self) {
        ENABLED.store(false, Ordering::Relaxed);
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "OpenTelemetry: spans still queued at exit were not exported");
        }
    }
}

/// Starts exporting to the OTLP/HTTP collector at `endpoint` (a base URL:
/// `/v1/traces` is appended unless given) and returns the tracer for the
/// `tracing` bridge. Call before any tokio runtime exists: the exporter's
/// blocking HTTP client runs its own.
pub fn start(endpoint: &str) -> anyhow::Result<(SdkTracer, TracingGuard)> {
    // The dropped-span counter is looked up once: the recorder must exist first.
    crate::telemetry::metrics::recorder();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(export::processor(&traces_url(endpoint))?)
        .with_resource(resource())
        .build();
    let tracer = provider.tracer("longrun");
    // A process starts tracing once; a second start keeps the first tracer.
    let _ = TRACER.set(tracer.clone());
    ENABLED.store(true, Ordering::Relaxed);
    Ok((tracer, TracingGuard { provider }))
}

/// The collector's trace URL for a base endpoint (OTLP's own rule for
/// `OTEL_EXPORTER_OTLP_ENDPOINT`), or the endpoint itself when it already
/// names the signal path.
fn traces_url(endpoint: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    if base.ends_with("/v1/traces") { base.to_owned() } else { format!("{base}/v1/traces") }
}

/// Who is exporting: `service.name` is `longrun` unless `OTEL_SERVICE_NAME`
/// or `OTEL_RESOURCE_ATTRIBUTES` say otherwise (the SDK reads both).
fn resource() -> Resource {
    let named = std::env::var_os("OTEL_SERVICE_NAME").is_some()
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|attributes| {
            attributes.split(',').any(|pair| pair.split('=').next().map(str::trim) == Some("service.name"))
        });
    let builder = Resource::builder().with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    if named { builder.build() } else { builder.with_service_name("longrun").build() }
}

/// Records the operation a request is about on the request's span (a
/// no-op while tracing is off or outside a request).
pub fn note_operation(id: &dyn std::fmt::Display, scope: &dyn std::fmt::Display) {
    if enabled() {
        let attributes =
            [KeyValue::new("longrun.operation.id", id.to_string()), KeyValue::new("longrun.scope", scope.to_string())];
        request::with_request(|span| span.set_attributes(attributes));
    }
}

/// A span for background work on one operation while tracing is on: a
/// trace of its own (the work was not asked for by any request), linked
/// to the trace the operation was created in.
pub fn linked_span(what: &'static str, id: &dyn std::fmt::Display, created_in: Option<&str>) -> tracing::Span {
    if !enabled() {
        return tracing::Span::none();
    }
    let span = tracing::info_span!(
        target: SPAN_TARGET,
        "background",
        otel.name = what,
        otel.kind = "internal",
        longrun.operation.id = %id,
        longrun.outcome = tracing::field::Empty,
    );
    if let Some(cx) = created_in.and_then(context_of) {
        use opentelemetry::trace::TraceContextExt;
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        span.add_link(cx.span().span_context().clone());
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_endpoint_gets_the_traces_path_and_a_full_one_is_kept() {
        assert_eq!(traces_url("http://collector:4318"), "http://collector:4318/v1/traces");
        assert_eq!(traces_url("http://collector:4318/"), "http://collector:4318/v1/traces");
        assert_eq!(traces_url("https://c.example/otlp/v1/traces"), "https://c.example/otlp/v1/traces");
    }
}
