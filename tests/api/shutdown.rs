//! Graceful shutdown under load: SIGTERM stops accepting, lets in-flight
//! requests finish, and closes the database cleanly. Every request got a
//! 2xx or no answer at all (never an error), and every 2xx is there after a
//! restart.

use crate::helpers::ServeProcess;
use crate::load::{self, Loaded};

#[tokio::test]
async fn sigterm_under_load_keeps_every_acknowledged_write_and_closes_the_file_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let Loaded { mut server, key, load, writers } = load::serve_under_load(dir.path(), 8, 30).await;
    let status = tokio::task::spawn_blocking(move || server.terminate()).await.unwrap();
    // The writers end by themselves: the stopped server answers no more.
    futures_util::future::join_all(writers).await;
    assert!(status.success(), "a graceful stop exits 0: {status:?}");
    let unexpected = load.tally.unexpected.lock().unwrap().clone();
    assert!(unexpected.is_empty(), "in-flight requests got an error instead of a 2xx or no answer: {unexpected:?}");
    let data = dir.path().join("longrun-data");
    assert!(!data.join("longrun.db-wal").exists(), "the database was closed: its WAL folded into the file");

    let acked = load.journal.snapshot();
    let again = ServeProcess::start(dir.path(), &[]);
    let findings = load::check(&again.address, &key, &acked).await;
    assert!(findings.is_clean(), "of {} operations: {findings:#?}", acked.len());
}
