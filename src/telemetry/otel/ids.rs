//! The trace and span ids a log line carries while a span is active.

use opentelemetry::trace::{SpanContext, TraceContextExt};

/// A span's trace id and span id as lowercase hex, written without the
/// formatting machinery (a line is written per request).
pub struct Ids {
    hex: [u8; 48],
}

impl Ids {
    fn of(span_context: &SpanContext) -> Ids {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = [0u8; 48];
        let bytes = span_context.trace_id().to_bytes().into_iter().chain(span_context.span_id().to_bytes());
        for (i, byte) in bytes.enumerate() {
            hex[2 * i] = DIGITS[usize::from(byte >> 4)];
            hex[2 * i + 1] = DIGITS[usize::from(byte & 0xf)];
        }
        Ids { hex }
    }

    /// 32 hex digits.
    pub fn trace_id(&self) -> &str {
        std::str::from_utf8(&self.hex[..32]).expect("hex digits")
    }

    /// 16 hex digits.
    pub fn span_id(&self) -> &str {
        std::str::from_utf8(&self.hex[32..]).expect("hex digits")
    }
}

/// The ids of the span events are logged in, when tracing is on: the
/// request's span while its handling runs, the context attached around its
/// access line, or a background `tracing` span.
pub fn current_ids() -> Option<Ids> {
    if !super::enabled() {
        return None;
    }
    let attached = || {
        let cx = opentelemetry::Context::current();
        let span = cx.span();
        span.span_context().is_valid().then(|| Ids::of(span.span_context()))
    };
    let in_request = super::request::started_ids().map(|sc| Ids::of(&sc));
    in_request.or_else(attached).or_else(|| {
        let id = tracing::Span::current().id()?;
        let cx = tracing::dispatcher::get_default(|dispatch| tracing_opentelemetry::get_otel_context(&id, dispatch))?;
        let span = cx.span();
        span.span_context().is_valid().then(|| Ids::of(span.span_context()))
    })
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanId, TraceFlags, TraceId, TraceState};

    use super::*;

    #[test]
    fn ids_are_written_as_the_w3c_header_writes_them() {
        let trace_id = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
        let span_id = SpanId::from_hex("00f067aa0ba902b7").unwrap();
        let ids = Ids::of(&SpanContext::new(trace_id, span_id, TraceFlags::SAMPLED, false, TraceState::default()));
        assert_eq!((ids.trace_id(), ids.span_id()), ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"));
    }
}
