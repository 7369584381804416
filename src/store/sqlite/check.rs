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
