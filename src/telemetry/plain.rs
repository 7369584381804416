//! The text log line when it goes to a file or a pipe (no colours): what
//! tracing-subscriber's default `Full` format writes, without its cost.
//! `Full` wraps every part in terminal styling even with colours off and
//! goes through a generic field visitor; that was 8 % of a status GET's
//! CPU (the access line), about half of it avoidable.

use std::cell::RefCell;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// `2026-11-23T11:36:33.933181Z  INFO target: message key=value …`, as
/// `Full` writes it without colours (no span context), plus `trace_id`
/// and `span_id` while a traced span is active.
pub struct PlainLine;

impl<S, N> FormatEvent<S, N> for PlainLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        write_time(&mut writer, SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default())?;
        write!(writer, " {:>5} {}:", meta.level().as_str(), meta.target())?;
        let mut fields = Fields { writer: &mut writer, written: Ok(()) };
        event.record(&mut fields);
        fields.written?;
        if let Some(ids) = super::otel::current_ids() {
            writer.write_str(" trace_id=")?;
            writer.write_str(ids.trace_id())?;
            writer.write_str(" span_id=")?;
            writer.write_str(ids.span_id())?;
        }
        writer.write_char('\n')
    }
}

thread_local! {
    /// The second last written by this thread and its text up to the
    /// fraction (`2026-11-23T11:36:33.`): a busy server writes many lines
    /// a second, and the calendar arithmetic was a fifth of a line's cost.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
}

/// `since_epoch` as tracing-subscriber's `SystemTime` timer writes it, in
/// UTC with microseconds: `2026-11-23T11:36:33.933181Z`.
fn write_time(writer: &mut impl fmt::Write, since_epoch: Duration) -> fmt::Result {
    SECOND.with_borrow_mut(|(second, text)| {
        if text.is_empty() || *second != since_epoch.as_secs() {
            *second = since_epoch.as_secs();
            *text = second_text(*second);
        }
        writer.write_str(text)?;
        let mut micros = *b"000000Z";
        let mut rest = since_epoch.subsec_micros();
        for digit in micros[..6].iter_mut().rev() {
            *digit = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        writer.write_str(std::str::from_utf8(&micros).expect("ASCII digits"))
    })
}

/// `2026-11-23T11:36:33.` for a count of seconds since the epoch: the
/// model's RFC 3339 text up to its fraction.
fn second_text(seconds: u64) -> String {
    let nanos = i64::try_from(seconds).unwrap_or(i64::MAX).saturating_mul(1_000_000_000);
    let mut text = crate::model::Timestamp::from_unix_nanos(nanos).to_rfc3339_millis();
    text.truncate(text.len() - "000Z".len());
    text
}

/// Writes each field as ` name=value` (the message bare), strings quoted
/// as `Debug` would, the way `Full`'s default visitor does.
struct Fields<'w, 'a> {
    writer: &'w mut Writer<'a>,
    written: fmt::Result,
}

impl Fields<'_, '_> {
    fn name(field: &Field) -> &'static str {
        let name = field.name();
        name.strip_prefix("r#").unwrap_or(name)
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.written.is_err() {
            return;
        }
        self.written = match field.name() {
            "message" => write!(self.writer, " {value}"),
            // The common case, quoted without `Debug`'s escaping machinery:
            // the same text, since nothing here needs escaping.
            _ if value.bytes().all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\') => {
                let name = Self::name(field);
                [" ", name, "=\"", value, "\""].into_iter().try_for_each(|part| self.writer.write_str(part))
            }
            _ => write!(self.writer, " {}={value:?}", Self::name(field)),
        };
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.written.is_err() {
            return;
        }
        self.written = match field.name() {
            "message" => write!(self.writer, " {value:?}"),
            _ => write!(self.writer, " {}={value:?}", Self::name(field)),
        };
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    /// The lines the events below make, without their timestamps.
    fn lines(plain: bool) -> Vec<String> {
        let captured = Captured::default();
        let builder = tracing_subscriber::fmt().with_ansi(false).with_writer(captured.clone());
        let events = || {
            let error = std::io::Error::other("disk \"full\"");
            tracing::info!(target: "longrun::access", method = %"GET", route = "/v1/operations/{id}", status = "200",
                latency_ms = 0.25, dialect = "native", key_id = "", "request");
            tracing::warn!(error = %error, r#type = "odd\tvalue", count = 3u64, flag = true, "cannot do it: {}", 42);
            tracing::error!(detail = "ünïcode and \\ backslash", "failed");
        };
        match plain {
            true => tracing::subscriber::with_default(builder.event_format(PlainLine).finish(), events),
            false => tracing::subscriber::with_default(builder.finish(), events),
        }
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        text.lines().map(|line| line.split_once(' ').expect("a timestamp first").1.to_owned()).collect()
    }

    fn time_text(since_epoch: Duration) -> String {
        let mut text = String::new();
        write_time(&mut text, since_epoch).unwrap();
        text
    }

    #[test]
    fn writes_times_as_the_system_time_timer_does() {
        assert_eq!(time_text(Duration::ZERO), "1970-01-01T00:00:00.000000Z");
        assert_eq!(time_text(Duration::new(1_709_251_199, 123_456_789)), "2024-02-29T23:59:59.123456Z");
        assert_eq!(time_text(Duration::new(1_709_251_199, 7_000)), "2024-02-29T23:59:59.000007Z", "same second");
        assert_eq!(time_text(Duration::new(1_709_251_200, 0)), "2024-03-01T00:00:00.000000Z", "the next one");
        // Against the timer itself, up to the second (retried across a tick).
        use tracing_subscriber::fmt::time::FormatTime;
        let agrees = (0..3).any(|_| {
            let mut theirs = String::new();
            tracing_subscriber::fmt::time::SystemTime.format_time(&mut Writer::new(&mut theirs)).unwrap();
            let ours = time_text(SystemTime::now().duration_since(UNIX_EPOCH).unwrap());
            theirs.len() == ours.len() && theirs[..20] == ours[..20]
        });
        assert!(agrees);
    }

    #[test]
    fn writes_what_the_full_format_writes_without_colours() {
        let (plain, full) = (lines(true), lines(false));
        assert_eq!(plain.len(), 3, "{plain:?}");
        assert_eq!(plain, full);
        assert!(
            plain[0].starts_with(" INFO longrun::access: request method=GET route=\"/v1/operations/{id}\""),
            "{plain:?}"
        );
    }
}
