//! Start-up integrity check of the SQLite file. A damaged database is refused
//! with one line that names the file and the way out (`longrun restore`),
//! instead of answering some requests and failing others at random.
//!
//! The check reads the whole file: seconds at 10^7 operations. So it runs on
//! its own thread (`Background`), and start-up waits for it only briefly:
//! a small file is still refused before anything is served; a large one is
//! served while the check goes on, and refused (every store call fails as
//! unavailable) the moment the check finds damage.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, OpenFlags};

/// Problems `quick_check` lists before it stops: one is enough to refuse the
/// file, a few help whoever investigates it.
const MAX_PROBLEMS: u32 = 3;

/// SQLite found the file damaged.
#[derive(Clone, Debug, thiserror::Error)]
#[error("the database {} is damaged ({detail})", path.display())]
pub struct Damaged {
    path: PathBuf,
    detail: String,
}

/// Runs `PRAGMA quick_check` (every page and index entry is read, in time
/// linear in the file's size; unlike `integrity_check` it skips the costly
/// index-to-table cross-checks) and fails with `Damaged` unless it says `ok`.
pub fn verify(conn: &Connection, path: &Path) -> anyhow::Result<()> {
    let problems = (|| {
        let mut stmt = conn.prepare(&format!("PRAGMA quick_check({MAX_PROBLEMS})"))?;
        let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
    })()
    .map_err(|e| match corrupt(&e) {
        true => Damaged { path: path.to_owned(), detail: e.to_string() }.into(),
        false => anyhow::Error::new(e),
    })?;
    if problems == ["ok"] {
        return Ok(());
    }
    Err(Damaged { path: path.to_owned(), detail: problems.join("; ").replace('\n', " ") }.into())
}

/// Whether the database file is exactly as a clean stop of longrun left it:
/// the marker `note_clean_stop` wrote names the file's current size, times
/// and inode, and no WAL is waiting to be replayed. Then the full check can
/// be skipped: it reads the whole file (seconds at 10^7 operations), and
/// nothing has touched the file since the last process closed it whole.
/// The marker is consumed: a crash from here on leaves none, so the next
/// start checks in full.
pub fn left_clean(path: &Path) -> bool {
    let marker = marker_path(path);
    let Ok(noted) = std::fs::read_to_string(&marker) else { return false };
    let _ = std::fs::remove_file(&marker);
    let wal_waiting = std::fs::metadata(wal_path(path)).is_ok_and(|wal| wal.len() > 0);
    !wal_waiting && fingerprint(path).is_some_and(|now| now == noted)
}

/// Notes that the file was closed cleanly (called after the last connection
/// closed and checkpointed the WAL away). A torn or stale marker is harmless:
/// it no longer matches the file, and the next start checks in full.
pub fn note_clean_stop(path: &Path) {
    if std::fs::metadata(wal_path(path)).is_ok() {
        return; // another process still has the file open: not ours to vouch for
    }
    let noted = stamp(path).and_then(|()| {
        let fingerprint = fingerprint(path).ok_or_else(|| std::io::Error::other("no fingerprint"))?;
        std::fs::write(marker_path(path), fingerprint)
    });
    if let Err(e) = noted {
        tracing::warn!(error = %e, "cannot note the clean stop; the next start checks the whole file");
    }
}

/// Sets the file's modification time to now with random nanoseconds. The
/// kernel stamps writes with a clock that ticks every few milliseconds, so a
/// write right after the clean stop could keep the old times; it cannot keep
/// these random nanoseconds.
fn stamp(path: &Path) -> std::io::Result<()> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let nanos = (uuid::Uuid::new_v4().as_u128() % 1_000_000_000) as u32;
    let stamped = std::time::UNIX_EPOCH + std::time::Duration::new(now.as_secs(), nanos);
    std::fs::File::options().write(true).open(path)?.set_modified(stamped)
}

/// Beside the database: `longrun.db.clean`.
pub(super) fn marker_path(path: &Path) -> PathBuf {
    beside(path, ".clean")
}

/// SQLite's WAL: `longrun.db-wal`.
fn wal_path(path: &Path) -> PathBuf {
    beside(path, "-wal")
}

/// `path` with `suffix` appended to its file name.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// What changes whenever anything writes or replaces the file: size,
/// modification and change times (nanoseconds), device and inode.
#[cfg(unix)]
fn fingerprint(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(format!(
        "size={} mtime={}.{} ctime={}.{} dev={} ino={}\n",
        m.len(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
        m.dev(),
        m.ino()
    ))
}

/// Elsewhere no fingerprint is trusted: every start checks in full.
#[cfg(not(unix))]
fn fingerprint(_path: &Path) -> Option<String> {
    None
}

/// Turns an error met while opening `path` into the refusal that names the
/// way out, when SQLite found the file damaged; other errors pass unchanged.
pub fn refuse_damaged(path: &Path, error: anyhow::Error) -> anyhow::Error {
    let damaged = error.chain().find_map(|cause| {
        if let Some(damaged) = cause.downcast_ref::<Damaged>() {
            return Some(damaged.to_string());
        }
        let sqlite = cause.downcast_ref::<rusqlite::Error>().filter(|e| corrupt(e))?;
        Some(Damaged { path: path.to_owned(), detail: sqlite.to_string() }.to_string())
    });
    let Some(damaged) = damaged else { return error };
    anyhow::anyhow!("{damaged}; nothing was served. {}", way_out(path))
}

/// What to do about a damaged file.
fn way_out(path: &Path) -> String {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    format!(
        "Stop every longrun using it, then restore the latest backup: \
         longrun restore --from BACKUP_FILE --data-dir {} --force",
        dir.display()
    )
}

#[derive(Default)]
struct Progress {
    /// The check has ended (either way).
    ended: bool,
    /// Nobody waits for the outcome: the check logs damage itself.
    unattended: bool,
}

/// The full check of a file that was not left clean, on its own thread and
/// its own read-only connection (a WAL reader: the writer goes on meanwhile).
pub struct Background {
    /// Set once, when the check found damage.
    damage: OnceLock<Damaged>,
    /// Set with `damage`: what every store call answers from then on.
    refusal: OnceLock<String>,
    /// Whether the check ran to the end and found nothing.
    passed: AtomicBool,
    progress: Mutex<Progress>,
    ended_signal: Condvar,
    /// The store is closing: the check gives up (`interrupt`).
    stop: AtomicBool,
    interrupt: rusqlite::InterruptHandle,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Background {
    /// Starts checking the file at `path`.
    pub fn start(path: &Path) -> anyhow::Result<Arc<Background>> {
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        let check = Arc::new(Background {
            damage: OnceLock::new(),
            refusal: OnceLock::new(),
            passed: AtomicBool::new(false),
            progress: Mutex::new(Progress::default()),
            ended_signal: Condvar::new(),
            stop: AtomicBool::new(false),
            interrupt: conn.get_interrupt_handle(),
            thread: Mutex::new(None),
        });
        let (running, path) = (check.clone(), path.to_owned());
        let thread = std::thread::Builder::new().name("sqlite-check".into()).spawn(move || running.run(conn, &path))?;
        *check.thread.lock().expect("check lock") = Some(thread);
        Ok(check)
    }

    fn run(&self, conn: Connection, path: &Path) {
        let started = Instant::now();
        let outcome = verify(&conn, path);
        drop(conn);
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match outcome {
            Ok(()) => {
                self.passed.store(true, Ordering::Release);
                tracing::info!(file = %path.display(), elapsed_ms, "integrity check passed");
            }
            Err(e) if e.downcast_ref::<Damaged>().is_some() => {
                let damage = e.downcast::<Damaged>().expect("just checked");
                let refusal = format!("{damage}; every request is refused from now on. {}", way_out(path));
                let _ = self.refusal.set(refusal);
                let _ = self.damage.set(damage);
            }
            Err(_) if self.stop.load(Ordering::Relaxed) => {
                tracing::info!(file = %path.display(), elapsed_ms, "integrity check stopped: the store is closing");
            }
            Err(e) => tracing::warn!(file = %path.display(), error = %e, "integrity check could not run"),
        }
        let unattended = {
            let mut progress = self.progress.lock().expect("check lock");
            progress.ended = true;
            progress.unattended
        };
        self.ended_signal.notify_all();
        // Start-up, while it waits, reports damage itself (and exits).
        if let (true, Some(refusal)) = (unattended, self.refusal()) {
            tracing::error!(elapsed_ms, "{refusal}");
        }
    }

    /// Waits for the check to end, at most `patience` (`None`: as long as
    /// it takes). `Some(outcome)` once it has ended; `None` leaves the check
    /// to report damage in the log (as `leave` does).
    pub fn wait(&self, patience: Option<Duration>) -> Option<Result<(), Damaged>> {
        let progress = self.progress.lock().expect("check lock");
        let not_ended = |progress: &mut Progress| !progress.ended;
        let mut progress = match patience {
            None => self.ended_signal.wait_while(progress, not_ended).expect("check lock"),
            Some(patience) => {
                self.ended_signal.wait_timeout_while(progress, patience, not_ended).expect("check lock").0
            }
        };
        if !progress.ended {
            progress.unattended = true;
            return None;
        }
        Some(match self.damage.get() {
            Some(damage) => Err(damage.clone()),
            None => Ok(()),
        })
    }

    /// Goes on without waiting: the check will log damage when it finds it.
    pub fn leave(&self) {
        self.progress.lock().expect("check lock").unattended = true;
    }

    /// The refusal, once the check has found damage.
    pub fn refusal(&self) -> Option<&str> {
        self.refusal.get().map(String::as_str)
    }

    /// Whether the check ran to the end and found the file whole.
    pub fn passed(&self) -> bool {
        self.passed.load(Ordering::Acquire)
    }

    /// Stops the check (if still running) and waits for its thread, which
    /// closes its connection.
    pub fn finish(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.interrupt.interrupt(); // quick_check looks for it every few pages
        if let Some(thread) = self.thread.lock().expect("check lock").take() {
            let _ = thread.join();
        }
    }
}

fn corrupt(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed_cleanly(dir: &Path) -> PathBuf {
        let path = dir.join("longrun.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1);").unwrap();
        conn.close().unwrap();
        note_clean_stop(&path);
        path
    }

    #[test]
    fn a_file_untouched_since_a_clean_stop_is_trusted_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = closed_cleanly(dir.path());
        assert!(left_clean(&path));
        assert!(!left_clean(&path), "the marker is consumed: a crash after this start must check in full");
    }

    #[test]
    fn a_file_written_after_the_clean_stop_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = closed_cleanly(dir.path());
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[100] ^= 0xFF;
        std::fs::write(&path, bytes).unwrap();
        assert!(!left_clean(&path));
    }

    #[test]
    fn a_file_replaced_by_a_copy_of_itself_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = closed_cleanly(dir.path());
        let copy = dir.path().join("copy.db");
        std::fs::copy(&path, &copy).unwrap();
        std::fs::rename(&copy, &path).unwrap();
        assert!(!left_clean(&path));
    }

    #[test]
    fn a_waiting_wal_or_no_marker_means_a_full_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = closed_cleanly(dir.path());
        std::fs::write(wal_path(&path), b"frames").unwrap();
        assert!(!left_clean(&path));
        let other = dir.path().join("never-noted.db");
        Connection::open(&other).unwrap().execute_batch("CREATE TABLE t(x)").unwrap();
        assert!(!left_clean(&other));
    }
}
