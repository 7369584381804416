//! A full disk: writes get 507 with `Retry-After` in the dialect's envelope,
//! reads keep working, and writes succeed again once space returns. The data
//! dir lives on a small tmpfs, so mounting needs root; without it the test
//! prints SKIPPED and passes.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{ServeProcess, cli_key};

/// A small tmpfs on a temporary directory, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount() -> Option<SmallDisk> {
        let dir = tempfile::tempdir().ok()?;
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then_some(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// Writes a file until the disk refuses more.
fn fill(file: &Path) {
    let mut filler = std::fs::File::create(file).unwrap();
    let chunk = vec![0u8; 16 * 1024];
    while filler.write_all(&chunk).and_then(|()| filler.sync_all()).is_ok() {}
}

#[tokio::test]
async fn a_full_disk_refuses_writes_with_507_keeps_reads_and_recovers() {
    let Some(disk) = SmallDisk::mount() else {
        eprintln!(
            "SKIPPED a_full_disk_refuses_writes_with_507_keeps_reads_and_recovers: cannot mount a tmpfs (needs root)"
        );
        return;
    };
    let server = ServeProcess::start(disk.path(), &[]);
    let key = cli_key(disk.path(), &[], "*", "admin");
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.address);
    let create = || {
        client
            .post(url("/v1/operations"))
            .bearer_auth(&key)
            .json(&json!({"scope": "projects/full", "kind": "deleteDevBox"}))
            .send()
    };
    let existing: Value = create().await.unwrap().json().await.unwrap();
    let id = existing["id"].as_str().unwrap().to_owned();

    fill(&disk.path().join("filler"));
    // The WAL has no room to grow: the first write that needs a new page
    // fails, and so does every one after it.
    let mut attempts = 0..1000;
    let refused = loop {
        assert!(attempts.next().is_some(), "1000 creates fit on a full disk");
        let response = create().await.unwrap();
        if response.status() != StatusCode::CREATED {
            break response;
        }
    };
    assert_refused(refused).await;
    let patch = client.patch(url(&format!("/v1/operations/{id}"))).bearer_auth(&key).json(&json!({"state": "Running"}));
    assert_refused(patch.send().await.unwrap()).await;
    let initiator = client
        .delete(url("/projects/full/users/me/devboxes/box1?api-version=2025-02-01"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(initiator.headers()["x-ms-error-code"], "InsufficientStorage", "Dev Center's envelope");
    assert_refused(initiator).await;

    let read = client.get(url(&format!("/v1/operations/{id}"))).bearer_auth(&key).send().await.unwrap();
    assert_eq!(read.status(), StatusCode::OK, "reads keep working");
    let status = url(&format!("/projects/full/operationstatuses/{id}?api-version=2025-02-01"));
    assert_eq!(client.get(status).bearer_auth(&key).send().await.unwrap().status(), StatusCode::OK);

    std::fs::remove_file(disk.path().join("filler")).unwrap();
    assert_eq!(create().await.unwrap().status(), StatusCode::CREATED, "writes resume once space returns");
    let patched =
        client.patch(url(&format!("/v1/operations/{id}"))).bearer_auth(&key).json(&json!({"state": "Running"}));
    assert_eq!(patched.send().await.unwrap().status(), StatusCode::OK);
}

/// 507, `Retry-After`, and the Azure.Core envelope naming the condition.
async fn assert_refused(response: Response) {
    assert_eq!(response.status(), StatusCode::INSUFFICIENT_STORAGE);
    assert!(response.headers().contains_key("retry-after"), "{:?}", response.headers());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "InsufficientStorage", "{body}");
}
