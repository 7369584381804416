//! Logging: `tracing` to stderr, filtered by `RUST_LOG` (default `info`),
//! human-readable or one JSON object per line (`--log-format json`).

mod batched;
pub mod metrics;
mod plain;

use tracing_subscriber::EnvFilter;

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// For people at a terminal.
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

/// Installs the global subscriber; call once, first thing in `main`, and
/// keep the returned guard until the process ends: dropping it writes out
/// the lines still queued (`batched` says why lines are queued at all).
/// `default_level` filters when `RUST_LOG` is unset.
pub fn init(format: LogFormat, default_level: &str) -> batched::FlushGuard {
    let (writer, guard) = batched::to(std::io::stderr());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    // Colours only for a person at a terminal, never into a log file.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(writer);
    match format {
        LogFormat::Text if ansi => builder.init(),
        LogFormat::Text => builder.event_format(plain::PlainLine).init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    guard
}
