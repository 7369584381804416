//! `longrun backup` under a live write load, then `longrun restore`: every
//! write acknowledged before the backup began is in the restored copy.

use crate::helpers::{ServeProcess, run_longrun};
use crate::load::{self, Loaded};

#[tokio::test]
async fn a_backup_taken_under_load_restores_every_write_acknowledged_before_it_began() {
    let dir = tempfile::tempdir().unwrap();
    let Loaded { server: _server, key, load, writers } = load::serve_under_load(dir.path(), 4, 40).await;
    let before = load.journal.snapshot();
    let backup_file = dir.path().join("snapshot.db");
    let backup = tokio::process::Command::new(env!("CARGO_BIN_EXE_longrun"))
        .args(["backup", "--to", backup_file.to_str().unwrap()])
        .current_dir(dir.path())
        .output()
        .await
        .unwrap();
    let acked_during = load.journal.len(); // the writers never paused: the backup ran under load
    load.stop();
    futures_util::future::join_all(writers).await;
    assert!(backup.status.success(), "{backup:?}");
    assert!(load.tally.unexpected.lock().unwrap().is_empty(), "{:?}", load.tally.unexpected);

    eprintln!("backup: {} operations acknowledged before it began, {acked_during} by its end", before.len());
    let restored = tempfile::tempdir().unwrap();
    let output = run_longrun(restored.path(), &["restore", "--from", backup_file.to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    let again = run_longrun(restored.path(), &["restore", "--from", backup_file.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2), "an existing database is not replaced without --force");
    let forced = run_longrun(restored.path(), &["restore", "--from", backup_file.to_str().unwrap(), "--force"]);
    assert!(forced.status.success(), "{forced:?}");

    let copy = ServeProcess::start(restored.path(), &[]);
    let busy = run_longrun(restored.path(), &["restore", "--from", backup_file.to_str().unwrap(), "--force"]);
    assert_eq!(busy.status.code(), Some(2), "never under a running server: {busy:?}");
    assert!(String::from_utf8_lossy(&busy.stderr).contains("in use"), "{busy:?}");
    let findings = load::check(&copy.address, &key, &before).await;
    assert!(findings.is_clean(), "of {} operations: {findings:#?}", before.len());
    let problems = load::check_file(&restored.path().join("longrun-data/longrun.db"));
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn a_damaged_or_foreign_file_is_not_restored_and_postgres_users_are_pointed_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![0x5a; 8192]).unwrap();
    let output = run_longrun(dir.path(), &["restore", "--from", junk.to_str().unwrap(), "--data-dir", "restored"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a usable backup"), "{output:?}");
    assert!(!dir.path().join("restored/longrun.db").exists());

    let foreign = dir.path().join("foreign.db");
    rusqlite::Connection::open(&foreign).unwrap().execute_batch("CREATE TABLE t (x);").unwrap();
    let output = run_longrun(dir.path(), &["restore", "--from", foreign.to_str().unwrap(), "--data-dir", "restored"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a longrun database"), "{output:?}");

    crate::helpers::cli_key(dir.path(), &["--data-dir", "live"], "*", "admin");
    let live = run_longrun(dir.path(), &["backup", "--to", "./live/../live/longrun.db", "--data-dir", "live"]);
    assert!(!live.status.success() && String::from_utf8_lossy(&live.stderr).contains("live database"), "{live:?}");

    let output = run_longrun(dir.path(), &["backup", "--to", "x.db", "--store", "postgres://u@db.example/longrun"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("pg_dump"), "{output:?}");
}
