//! Start-up checks: a damaged (small) database file is refused with exit
//! code 2 and one line naming the file and the way out, before anything is
//! served. (A file too large to check within start-up's patience is served
//! while the check runs: `store::sqlite` tests that case.)

use std::io::{Seek, SeekFrom, Write};

use serde_json::json;

use crate::helpers::{ServeProcess, cli_key, run_longrun};

#[tokio::test]
async fn a_damaged_database_is_refused_at_start_naming_the_file_and_restore() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServeProcess::start(dir.path(), &[]);
    let key = cli_key(dir.path(), &[], "*", "admin");
    let client = reqwest::Client::new();
    // Padded properties: the operations fill dozens of pages, so the middle
    // of the file is table data.
    let padding = "x".repeat(1500);
    for _ in 0..60 {
        let created = client
            .post(format!("{}/v1/operations", server.address))
            .bearer_auth(&key)
            .json(&json!({"scope": "projects/damaged", "kind": "deleteDevBox", "properties": {"pad": padding}}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
    }
    assert!(server.terminate().success());

    let file = dir.path().join("longrun-data/longrun.db");
    // Whatever is still in the WAL goes into the main file first, so the
    // garbage below cannot be masked by newer copies of the same pages.
    rusqlite::Connection::open(&file).unwrap().execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
    let pages = std::fs::metadata(&file).unwrap().len() / 4096;
    assert!(pages > 10, "the file is too small to damage in the middle: {pages} pages");
    let mut handle = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
    handle.seek(SeekFrom::Start(pages / 2 * 4096)).unwrap();
    handle.write_all(&[0xA5; 3 * 4096]).unwrap();
    handle.sync_all().unwrap();

    let output = run_longrun(dir.path(), &["serve", "--listen", "127.0.0.1:0"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(!String::from_utf8_lossy(&output.stdout).contains("listening"), "never half-served: {output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    for needed in ["longrun-data/longrun.db", "damaged", "longrun restore --from"] {
        assert!(stderr.contains(needed), "'{needed}' missing from: {stderr}");
    }
}
