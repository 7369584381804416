//! Start-up integrity check of the SQLite file. A damaged database is refused
//! before anything is served, with one line that names the file and the way
//! out (`longrun restore`), instead of answering some requests and failing
//! others at random.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, ErrorCode};

/// Problems `quick_check` lists before it stops: one is enough to refuse the
/// file, a few help whoever investigates it.
const MAX_PROBLEMS: u32 = 3;

/// SQLite found the file damaged.
#[derive(Debug, thiserror::Error)]
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
fn marker_path(path: &Path) -> PathBuf {
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
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    anyhow::anyhow!(
        "{damaged}; nothing was served. Stop every longrun using it, then restore the latest backup: \
         longrun restore --from BACKUP_FILE --data-dir {} --force",
        dir.display()
    )
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
