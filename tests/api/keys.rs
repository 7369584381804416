//! Key lifecycle through the real binary: rotation with an overlap in which
//! both secrets work, revocation that takes effect on the next request, and
//! a revocation that brings a rotation's end forward.

use std::path::Path;

use reqwest::StatusCode;

use crate::helpers::{ServeProcess, cli_key, run_longrun};

async fn status_with(server: &ServeProcess, key: &str) -> StatusCode {
    let url = format!("{}/v1/operations?scope=projects/rotated", server.address);
    reqwest::Client::new().get(url).bearer_auth(key).send().await.unwrap().status()
}

fn key_id_of(dir: &Path, status: &str) -> Vec<String> {
    let listed = String::from_utf8(run_longrun(dir, &["key", "list"]).stdout).unwrap();
    listed.lines().filter(|l| l.split_whitespace().nth(2) == Some(status)).map(|l| l[..40].trim().to_owned()).collect()
}

#[tokio::test]
async fn rotating_a_key_keeps_the_old_secret_for_the_overlap_and_revoking_ends_it_now() {
    let dir = tempfile::tempdir().unwrap();
    let old = cli_key(dir.path(), &["--name", "ci"], "projects/rotated", "read");
    let server = ServeProcess::start(dir.path(), &[]);
    let old_id = key_id_of(dir.path(), "active").pop().unwrap();

    let rotated = run_longrun(dir.path(), &["key", "rotate", &old_id, "--overlap", "1h"]);
    assert!(rotated.status.success(), "{rotated:?}");
    let new = String::from_utf8(rotated.stdout).unwrap().trim().to_owned();
    assert!(new.starts_with("lr_") && new != old, "only the new secret on stdout");
    assert_eq!(status_with(&server, &new).await, StatusCode::OK);
    assert_eq!(status_with(&server, &old).await, StatusCode::OK, "the old secret works during the overlap");
    assert_eq!(key_id_of(dir.path(), "expiring"), vec![old_id.clone()]);
    let listed = String::from_utf8(run_longrun(dir.path(), &["key", "list"]).stdout).unwrap();
    assert_eq!(listed.lines().filter(|l| l.ends_with(" ci")).count(), 2, "the new key keeps the name:\n{listed}");

    let revoked = run_longrun(dir.path(), &["key", "revoke", &old_id]);
    assert!(revoked.status.success(), "{revoked:?}");
    // Revoking ends the overlap, from the next request on.
    assert_eq!(status_with(&server, &old).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status_with(&server, &new).await, StatusCode::OK);

    let new_id = key_id_of(dir.path(), "active").pop().unwrap();
    let rotated = run_longrun(dir.path(), &["key", "rotate", &new_id, "--overlap", "0s"]);
    let newest = String::from_utf8(rotated.stdout).unwrap().trim().to_owned();
    assert_eq!(status_with(&server, &new).await, StatusCode::UNAUTHORIZED, "no overlap: replaced at once");
    assert_eq!(status_with(&server, &newest).await, StatusCode::OK);
    let gone = run_longrun(dir.path(), &["key", "rotate", &old_id]);
    assert_eq!(gone.status.code(), Some(2), "a revoked key cannot be rotated");
}

#[tokio::test]
async fn last_use_is_written_in_batches_and_shown_by_key_list() {
    let dir = tempfile::tempdir().unwrap();
    let used = cli_key(dir.path(), &["--name", "used"], "projects/rotated", "read");
    cli_key(dir.path(), &["--name", "idle"], "projects/rotated", "read");
    let mut server = ServeProcess::start(dir.path(), &[]);
    for _ in 0..3 {
        assert_eq!(status_with(&server, &used).await, StatusCode::OK);
    }
    assert!(server.terminate().success(), "a graceful stop writes the last batch");
    let listed = String::from_utf8(run_longrun(dir.path(), &["key", "list"]).stdout).unwrap();
    let last_used = |name: &str| {
        let line = listed.lines().find(|l| l.ends_with(&format!(" {name}"))).unwrap_or_else(|| panic!("{listed}"));
        line.split_whitespace().nth(4).unwrap().to_owned()
    };
    assert_eq!(last_used("idle"), "never", "{listed}");
    let when = last_used("used");
    assert!(longrun::model::Timestamp::parse_rfc3339(&when).is_some(), "a time, not {when}:\n{listed}");
}
