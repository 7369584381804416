//! Online backup and restore of the SQLite file (`longrun backup` /
//! `longrun restore`). A backup is `VACUUM INTO` through a read
//! transaction of its own: a consistent snapshot of everything committed
//! when it began, taken while a running server keeps writing (WAL readers
//! never block the writer). Restore verifies a backup before it replaces
//! anything. No async, no store: these run from the CLI, not the server.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rusqlite::{Connection, OpenFlags};

use super::{FILE_NAME, check, schema};

/// What a backup or restore produced, for the one line the CLI prints.
#[derive(Debug)]
pub struct Copied {
    /// The file written.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its schema version.
    pub schema_version: i64,
}

/// Writes a consistent snapshot of `data_dir`'s database to `to` (replacing
/// it atomically if it exists). Fails if `data_dir` holds no database.
pub fn backup(data_dir: &Path, to: &Path) -> anyhow::Result<Copied> {
    let source = data_dir.join(FILE_NAME);
    if !source.is_file() {
        bail!("{} holds no longrun database ({FILE_NAME}); nothing to back up", data_dir.display());
    }
    if same_file(&source, to) {
        bail!("{} is the live database itself; write the backup elsewhere", to.display());
    }
    // Read-write flags (without CREATE) only because VACUUM INTO refuses a
    // read-only or query_only connection; nothing here writes to `source`.
    let conn = Connection::open_with_flags(&source, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .with_context(|| format!("cannot open {}", source.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let partial = with_suffix(to, ".partial");
    remove_if_present(&partial)?;
    let target = partial.to_str().with_context(|| format!("{} is not UTF-8", partial.display()))?;
    conn.execute("VACUUM INTO ?1", [target]).with_context(|| format!("cannot write {}", partial.display()))?;
    drop(conn);
    // VACUUM INTO does not sync what it wrote; a backup must survive a crash.
    File::open(&partial)?.sync_all()?;
    let copied = verified(&partial)?;
    std::fs::rename(&partial, to).with_context(|| format!("cannot move the backup to {}", to.display()))?;
    sync_dir(to)?;
    Ok(Copied { path: to.to_owned(), ..copied })
}

/// Replaces (`force`) or creates `data_dir`'s database with the backup
/// `from`, after checking it. Stop every server using `data_dir` first.
pub fn restore(from: &Path, data_dir: &Path, force: bool) -> anyhow::Result<Copied> {
    verified(from).with_context(|| format!("{} is not a usable backup", from.display()))?;
    let target = data_dir.join(FILE_NAME);
    if target.exists() && !force {
        bail!(
            "{} already holds a database; stop every longrun using it, then add --force to replace it",
            data_dir.display()
        );
    }
    if target.exists() {
        refuse_if_in_use(&target)?;
    }
    std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
    let partial = with_suffix(&target, ".restoring");
    std::fs::copy(from, &partial).with_context(|| format!("cannot copy into {}", partial.display()))?;
    File::open(&partial)?.sync_all()?;
    // The old file's WAL must go first: left beside the restored file it
    // would be replayed onto it at the next open.
    for stale in ["-wal", "-shm", "-journal"] {
        remove_if_present(&with_suffix(&target, stale))?;
    }
    std::fs::rename(&partial, &target).with_context(|| format!("cannot move the backup to {}", target.display()))?;
    sync_dir(&target)?;
    let copied = verified(&target)?;
    Ok(copied)
}

/// Refuses to replace a database another process has open (a running
/// server): leaving WAL mode needs the only connection, so it fails at once
/// with "busy" when there is another one. A damaged file passes: replacing
/// it is what a restore is for.
fn refuse_if_in_use(path: &Path) -> anyhow::Result<()> {
    let in_use = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .and_then(|conn| conn.query_row("PRAGMA journal_mode = DELETE", [], |row| row.get::<_, String>(0)))
        .err()
        .is_some_and(|e| {
            matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            )
        });
    if in_use {
        bail!("{} is in use (is longrun running on it?); stop it before restoring", path.display());
    }
    Ok(())
}

/// Checks that `path` is an intact longrun database this build can open.
fn verified(path: &Path) -> anyhow::Result<Copied> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("cannot open {}", path.display()))?;
    check::verify(&conn, path)?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0)).map_err(anyhow::Error::new)?;
    let has_operations: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'operations')",
            [],
            |r| r.get(0),
        )
        .map_err(anyhow::Error::new)?;
    if version < 1 || !has_operations {
        bail!("{} is an SQLite file but not a longrun database", path.display());
    }
    if version > schema::CURRENT_VERSION {
        bail!(
            "{} has schema version {version}, newer than this longrun understands ({}); use the newer longrun",
            path.display(),
            schema::CURRENT_VERSION
        );
    }
    Ok(Copied { path: path.to_owned(), bytes: std::fs::metadata(path)?.len(), schema_version: version })
}

/// Whether `b` names the file `a` (which exists); `b` may not exist yet.
fn same_file(a: &Path, b: &Path) -> bool {
    let canonical = |p: &Path| -> Option<PathBuf> {
        let dir = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        Some(std::fs::canonicalize(dir).ok()?.join(p.file_name()?))
    };
    canonical(a).is_some_and(|a| Some(a) == canonical(b))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn remove_if_present(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Makes a rename durable: the directory entry is synced too.
fn sync_dir(file: &Path) -> anyhow::Result<()> {
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    File::open(dir).and_then(|d| d.sync_all()).with_context(|| format!("cannot sync {}", dir.display()))
}
