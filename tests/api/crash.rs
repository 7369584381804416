//! The crash campaign: `longrun serve` on one SQLite data dir is SIGKILLed
//! at random moments under a journaled write load (creates, PATCHes through
//! every state, worker leases, a webhook whose outbox is busy), restarted on
//! the same dir, and every acknowledged write is read back: present, at the
//! acknowledged version or later, in no impossible state. At the end every
//! logged change has exactly one delivery in the webhook outbox.
//!
//! 10 kills in the suite; `scripts/crash-campaign [KILLS]` runs the long
//! form (`LONGRUN_CRASH_KILLS`, default 100 there). Figures: docs/durability.md.

use std::path::Path;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use crate::helpers::{ServeProcess, cli_key};
use crate::load::{self, Journal, Load};

/// Kills in the short form, run by the suite.
const SHORT_FORM_KILLS: usize = 10;

#[tokio::test]
async fn the_crash_campaign_loses_no_acknowledged_write() {
    let kills = std::env::var("LONGRUN_CRASH_KILLS").ok().and_then(|n| n.parse().ok()).unwrap_or(SHORT_FORM_KILLS);
    let dir = tempfile::tempdir().unwrap();
    let key = cli_key(dir.path(), &[], "*", "admin");
    let hook_url = receiver().await;
    let journal = Journal::default();
    let db = dir.path().join("longrun-data/longrun.db");
    let (mut acked, mut connection_errors, mut checks) = (0, 0, 0);

    for cycle in 0..=kills {
        let mut server = ServeProcess::start(dir.path(), &[]);
        let before = journal.snapshot();
        let findings = load::check(&server.address, &key, &before).await;
        assert!(findings.is_clean(), "after kill {cycle}, of {} operations: {findings:#?}", before.len());
        checks += before.len();
        if cycle == kills {
            wait_for_the_outbox(&db).await;
            assert!(server.terminate().success());
            break;
        }
        if cycle == 0 {
            let hook = reqwest::Client::new()
                .post(format!("{}/v1/webhooks", server.address))
                .bearer_auth(&key)
                .json(&json!({"url": hook_url, "events": "all"}))
                .send()
                .await
                .unwrap();
            assert_eq!(hook.status(), StatusCode::CREATED);
        }
        let load = Load::new(&server.address, &key, journal.clone());
        let writers = load.start(4);
        tokio::time::sleep(Duration::from_millis(rand::random_range(50..500))).await;
        server.kill();
        load.stop();
        futures_util::future::join_all(writers).await;
        let unexpected = load.tally.unexpected.lock().unwrap().clone();
        assert!(unexpected.is_empty(), "answers that are neither 2xx nor expected: {unexpected:?}");
        acked += load.tally.acked.load(std::sync::atomic::Ordering::SeqCst);
        connection_errors += load.tally.connection_errors.load(std::sync::atomic::Ordering::SeqCst);
    }

    let mut invariants = load::check_file(&db);
    invariants.extend(outbox_problems(&db));
    assert!(invariants.is_empty(), "{invariants:#?}");
    eprintln!(
        "crash campaign: {kills} kills, {acked} writes acknowledged on {} operations, {connection_errors} requests \
         cut by a kill, {checks} operation read-backs after restarts, 0 writes lost, 0 impossible states",
        journal.len()
    );
}

/// Waits until the webhook outbox has read the whole change log.
async fn wait_for_the_outbox(db: &Path) {
    let sql = "SELECT (SELECT seq FROM webhook_cursor) >= (SELECT max(seq) FROM changes)";
    for _ in 0..300 {
        let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        if conn.query_row(sql, [], |row| row.get::<_, bool>(0)).unwrap() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the webhook outbox never caught up with the change log");
}

/// The outbox lost nothing and doubled nothing across the kills: every
/// change after the webhook's registration has exactly one delivery.
fn outbox_problems(db: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let missing: i64 = conn
        .query_row(
            "SELECT count(*) FROM changes c WHERE c.seq > (SELECT start_seq FROM webhooks) \
             AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.seq = c.seq)",
            [],
            |row| row.get(0),
        )
        .unwrap();
    let doubled: i64 = conn
        .query_row("SELECT count(*) FROM (SELECT seq FROM deliveries GROUP BY seq HAVING count(*) > 1)", [], |row| {
            row.get(0)
        })
        .unwrap();
    let mut problems = Vec::new();
    if missing > 0 {
        problems.push(format!("{missing} changes never reached the webhook outbox"));
    }
    if doubled > 0 {
        problems.push(format!("{doubled} changes queued twice for the same webhook"));
    }
    problems
}

/// A webhook receiver that acknowledges everything, so the outbox keeps
/// writing (claims, outcomes) while the server is killed.
async fn receiver() -> String {
    let app = axum::Router::new().route("/hook", axum::routing::post(|| async { StatusCode::NO_CONTENT }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}
