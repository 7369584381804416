//! The trace and span ids a log line carries while a span is active.

use opentelemetry::trace::TraceContextExt;
use tracing_subscriber::registry::LookupSpan;

/// The (trace id, span id) of the span `event`s are logged in, as hex, when
/// tracing is on and that span belongs to a sampled or remote trace.
pub fn current_ids<S>(
    ctx: &tracing_subscriber::fmt::FmtContext<'_, S, impl for<'w> tracing_subscriber::fmt::FormatFields<'w> + 'static>,
) -> Option<(String, String)>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    if !super::enabled() {
        return None;
    }
    let span = ctx.lookup_current()?;
    let cx =
        tracing::dispatcher::get_default(|dispatch| tracing_opentelemetry::get_otel_context(&span.id(), dispatch))?;
    let span_context = cx.span().span_context().clone();
    span_context.is_valid().then(|| (span_context.trace_id().to_string(), span_context.span_id().to_string()))
}
