//! Log lines to stderr in batches. Every request logs an access line; with
//! one `write` syscall per line on the request's thread, logging cost a
//! tenth of a status GET's CPU, and a channel to a writer thread (what
//! `tracing-appender` does) cost as much again in wake-ups and spinning on
//! two cores. Here a line is appended to a shared buffer under a mutex, and
//! one thread writes whatever has gathered every `FLUSH_EVERY`.
//!
//! Nothing is dropped: past `MAX_QUEUED` bytes (stderr not keeping up),
//! writers wait until the flusher has taken the buffer. The guard's drop
//! writes out the rest, so a normal exit loses no line.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How late a line reaches stderr at most (plus the write itself).
const FLUSH_EVERY: Duration = Duration::from_millis(10);
/// Bytes gathered before writers wait for the flusher.
const MAX_QUEUED: usize = 4 << 20;

/// Where the subscriber writes: appends to the shared buffer.
#[derive(Clone)]
pub struct Batched {
    shared: Arc<Shared>,
}

/// Writes out what is left and stops the flusher when dropped.
pub struct FlushGuard {
    shared: Arc<Shared>,
    flusher: Option<JoinHandle<()>>,
}

/// The buffer lines gather in (the subscriber's writer is a reference to it).
pub struct Shared {
    queued: Mutex<Vec<u8>>,
    taken: Condvar,
    stopping: AtomicBool,
}

/// A writer to `out` and the guard that owns its flushing thread.
pub fn to(out: impl Write + Send + 'static) -> (Batched, FlushGuard) {
    let shared = Arc::new(Shared {
        queued: Mutex::new(Vec::with_capacity(64 * 1024)),
        taken: Condvar::new(),
        stopping: AtomicBool::new(false),
    });
    let flusher_shared = shared.clone();
    let flusher = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || flush_until_stopped(&flusher_shared, out))
        .expect("cannot start the log writer thread");
    (Batched { shared: shared.clone() }, FlushGuard { shared, flusher: Some(flusher) })
}

fn flush_until_stopped(shared: &Shared, mut out: impl Write) {
    let mut batch = Vec::with_capacity(64 * 1024);
    loop {
        let stopping = shared.stopping.load(Ordering::Acquire);
        if !stopping {
            std::thread::park_timeout(FLUSH_EVERY);
        }
        {
            let mut queued = shared.queued.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::swap(&mut *queued, &mut batch);
        }
        shared.taken.notify_all();
        if !batch.is_empty() {
            // Nowhere to report a failed log write; the next batch tries again.
            let _ = out.write_all(&batch).and_then(|()| out.flush());
            batch.clear();
        }
        if stopping {
            return;
        }
    }
}

impl Write for &Shared {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut queued = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        while queued.len() > MAX_QUEUED && !self.stopping.load(Ordering::Acquire) {
            queued = self.taken.wait(queued).unwrap_or_else(|e| e.into_inner());
        }
        queued.extend_from_slice(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(()) // the flusher's job, every FLUSH_EVERY
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Batched {
    type Writer = &'a Shared;

    fn make_writer(&'a self) -> &'a Shared {
        &self.shared
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        if let Some(flusher) = self.flusher.take() {
            flusher.thread().unpark();
            let _ = flusher.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Write` whose bytes the test can read.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_arrives_in_order_and_the_guard_writes_the_rest() {
        let sink = Sink::default();
        let (writer, guard) = to(sink.clone());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let writer = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..2_000 {
                        // As the subscriber does: a whole line per write_all.
                        (&*writer.shared).write_all(format!("{t} {i}\n").as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        drop(guard);
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        for t in 0..4 {
            let seen: Vec<u32> =
                text.lines().filter_map(|l| l.strip_prefix(&format!("{t} "))).map(|i| i.parse().unwrap()).collect();
            assert_eq!(seen, (0..2_000).collect::<Vec<_>>(), "thread {t}");
        }
    }

    #[test]
    fn a_line_reaches_the_output_without_waiting_for_the_end() {
        let sink = Sink::default();
        let (writer, _guard) = to(sink.clone());
        writeln!(&*writer.shared, "soon").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while sink.0.lock().unwrap().is_empty() {
            assert!(std::time::Instant::now() < deadline, "the line never left the buffer");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
