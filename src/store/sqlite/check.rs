//! Start-up integrity check of the SQLite file. A damaged database is refused
//! before anything is served, with one line that names the file and the way
//! out (`longrun restore`), instead of answering some requests and failing
//! others at random.

use std::path::Path;

use rusqlite::{Connection, ErrorCode};

/// Problems `quick_check` lists before it stops: one is enough to refuse the
/// file, a few help whoever investigates it.
const MAX_PROBLEMS: u32 = 3;

/// Runs `PRAGMA quick_check` (every page and index entry is read, in time
/// linear in the file's size; unlike `integrity_check` it skips the costly
/// index-to-table cross-checks) and fails unless it answers `ok`.
pub fn verify(conn: &Connection, path: &Path) -> anyhow::Result<()> {
    let problems = (|| {
        let mut stmt = conn.prepare(&format!("PRAGMA quick_check({MAX_PROBLEMS})"))?;
        let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
    })()
    .map_err(|e| damaged(path, anyhow::Error::new(e)))?;
    if problems == ["ok"] {
        return Ok(());
    }
    let detail = problems.join("; ").replace('\n', " ");
    Err(damaged_because(path, &detail))
}

/// Turns an error met while opening `path` into the "damaged" refusal when
/// SQLite says the file is corrupt or not a database; other errors pass.
pub fn damaged(path: &Path, error: anyhow::Error) -> anyhow::Error {
    let corrupt = error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<rusqlite::Error>())
        .find(|e| matches!(e.sqlite_error_code(), Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)));
    match corrupt {
        Some(e) => damaged_because(path, &e.to_string()),
        None => error,
    }
}

fn damaged_because(path: &Path, detail: &str) -> anyhow::Error {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    anyhow::anyhow!(
        "the database {} is damaged ({detail}); nothing was served. Stop every longrun using it, then restore \
         the latest backup: longrun restore --from BACKUP_FILE --data-dir {} --force",
        path.display(),
        dir.display()
    )
}
