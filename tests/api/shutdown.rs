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

#[tokio::test]
async fn a_request_that_never_finishes_does_not_hold_the_stop_past_the_grace_period() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServeProcess::start(dir.path(), &["--shutdown-grace", "1s"]);
    let mut stuck = tokio::net::TcpStream::connect(server.address.trim_start_matches("http://")).await.unwrap();
    // Its handler waits for a body that never comes.
    let request = "POST /v1/operations HTTP/1.1\r\nhost: longrun\r\ncontent-type: application/json\r\n\
                   content-length: 1000\r\n\r\n{\"scope\": ";
    stuck.write_all(request.as_bytes()).await.unwrap();
    // Once another request is answered, the server has read the stuck one.
    reqwest::get(format!("{}/healthz", server.address)).await.unwrap();

    // Without the bound this would wait forever; the timeout only keeps a
    // regression from hanging the suite.
    let stop = tokio::task::spawn_blocking(move || server.terminate());
    let status = tokio::time::timeout(std::time::Duration::from_secs(60), stop).await.expect("stopped").unwrap();
    assert!(status.success(), "{status:?}");
    let mut answer = Vec::new();
    let _ = stuck.read_to_end(&mut answer).await;
    assert!(!String::from_utf8_lossy(&answer).contains(" 201 "), "no answer, certainly no 2xx");
}
