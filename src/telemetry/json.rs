//! The JSON log line: tracing-subscriber's, one flat object per event,
//! plus `trace_id` and `span_id` while a traced span is active.

use std::fmt;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{Format, Json, JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent};
use tracing_subscriber::registry::LookupSpan;

/// `{"timestamp":…,"level":…,"message":…,…}` with the event's fields at
/// the top level and no span fields (a request's span would repeat them).
pub struct JsonLine(Format<Json>);

impl JsonLine {
    pub fn new() -> JsonLine {
        JsonLine(
            tracing_subscriber::fmt::format().json().flatten_event(true).with_current_span(false).with_span_list(false),
        )
    }
}

impl<S> FormatEvent<S, JsonFields> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let Some(ids) = super::otel::current_ids() else {
            return self.0.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        let object = line.trim_end().strip_suffix('}').ok_or(fmt::Error)?;
        writeln!(writer, "{object},\"trace_id\":\"{}\",\"span_id\":\"{}\"}}", ids.trace_id(), ids.span_id())
    }
}
