//! Logging: `tracing` to stderr, filtered by `RUST_LOG` (default `info`),
//! human-readable or one JSON object per line (`--log-format json`); and
//! OpenTelemetry traces when an OTLP endpoint is given (`otel`).

mod batched;
mod json;
pub mod metrics;
pub mod otel;
mod plain;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// For people at a terminal.
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

/// What must outlive the process's work: dropping it exports the spans
/// still queued, then writes out the log lines still queued.
pub struct TelemetryGuard {
    _tracing: Option<otel::TracingGuard>,
    _log_writer: batched::FlushGuard,
}

/// Installs the global subscriber; call once, first thing in `main` (before
/// any tokio runtime), and keep the returned guard until the process ends
/// (`batched` says why lines are queued at all). `default_level` filters
/// when `RUST_LOG` is unset; `otlp_endpoint` turns traces on.
pub fn init(format: LogFormat, default_level: &str, otlp_endpoint: Option<&str>) -> anyhow::Result<TelemetryGuard> {
    let (writer, log_writer) = batched::to(std::io::stderr());
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let tracing = otlp_endpoint.map(otel::start).transpose()?;
    // Colours only for a person at a terminal, never into a log file; and
    // not with traces on, where the plain line carries the trace ids.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && tracing.is_none();
    let lines = tracing_subscriber::fmt::layer().with_ansi(ansi).with_writer(writer);
    let lines = match format {
        LogFormat::Text if ansi => lines.boxed(),
        LogFormat::Text => lines.event_format(plain::PlainLine).boxed(),
        LogFormat::Json => lines
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(json::JsonLine::new())
            .boxed(),
    };
    let (spans, tracing) = match tracing {
        Some((tracer, guard)) => {
            // Spans are never filtered by the log level; events never become span events.
            filter = filter.add_directive(format!("{}=info", otel::SPAN_TARGET).parse()?);
            let layer = tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_context_activation(false)
                .with_tracked_inactivity(false)
                .with_location(false)
                .with_threads(false)
                .with_target(false)
                .with_level(false)
                .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
                    meta.is_span() && meta.target() == otel::SPAN_TARGET
                }));
            (Some(layer), Some(guard))
        }
        None => (None, None),
    };
    tracing_subscriber::registry().with(lines).with(spans).with(filter).init();
    Ok(TelemetryGuard { _tracing: tracing, _log_writer: log_writer })
}
