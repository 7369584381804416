//! `longrun backup` and `longrun restore`: copies of the embedded SQLite
//! store, consistent while it serves.

use std::path::{Path, PathBuf};

use super::config::StoreConfig;
use super::failure::{Failure, config_error, runtime_error};
use crate::store::sqlite;

/// Copies the store of `store` to `to`.
pub fn backup(to: &Path, store: &StoreConfig) -> Result<(), Failure> {
    let copied = sqlite::backup::backup(&sqlite_dir(store)?, to).map_err(runtime_error)?;
    println!("Backed up to {} ({} bytes, schema version {}).", to.display(), copied.bytes, copied.schema_version);
    Ok(())
}

/// Puts the copy `from` in place of the store of `store` (`force`: over an
/// existing one).
pub fn restore(from: &Path, force: bool, store: &StoreConfig) -> Result<(), Failure> {
    let dir = sqlite_dir(store)?;
    let copied = sqlite::backup::restore(from, &dir, force).map_err(config_error)?;
    println!("Restored {} into {} (schema version {}).", from.display(), copied.path.display(), copied.schema_version);
    Ok(())
}

/// Backups are SQLite's here; a PostgreSQL store has its own tools.
fn sqlite_dir(store: &StoreConfig) -> Result<PathBuf, Failure> {
    store.sqlite_dir().ok_or_else(|| {
        config_error(
            "longrun backup/restore work on the embedded SQLite store; for PostgreSQL use its own tools: \
             pg_dump (a logical copy) or pg_basebackup with WAL archiving (point-in-time recovery)",
        )
    })
}
