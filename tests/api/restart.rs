//! Nothing acknowledged is lost across a restart on the same data dir.

use serde_json::{Value, json};

use crate::helpers::{ServeProcess, TestApp, cli_key, id_of, run_longrun};

#[tokio::test]
async fn operations_read_back_unchanged_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = TestApp::spawn_in(dir.path()).await;
    let mut before = Vec::new();
    for (scope, kind, patch) in [
        (
            "projects/keep",
            "deleteDevBox",
            json!({"state": "Running", "percentComplete": 33.5, "properties": {"a": [1, 2]}}),
        ),
        ("accounts/keep", "takeSnapshot", json!({"state": "Succeeded", "resourceLocation": "/snapshots/s1"})),
        (
            "projects/keep",
            "startDevBox",
            json!({"state": "Failed", "error": {"code": "E", "message": "m", "target": "t"}}),
        ),
    ] {
        let id = id_of(&first.create_ok(scope, kind).await);
        first.patch_ok(&id, patch).await;
        before.push(read(&first, &id).await);
    }
    let key = first.admin_key.clone();
    first.stop().await;

    let second = TestApp::spawn_in(dir.path()).await;
    for op in before {
        let response = second.get_bearer(&format!("/v1/operations/{}", id_of(&op)), &key).await;
        assert_eq!(response.status(), reqwest::StatusCode::OK, "the old key still works");
        assert_eq!(response.json::<Value>().await.unwrap(), op);
    }
}

async fn read(app: &TestApp, id: &str) -> Value {
    app.get_bearer(&format!("/v1/operations/{id}"), &app.admin_key).await.json().await.unwrap()
}

#[tokio::test]
async fn a_second_server_on_the_same_data_dir_is_refused_while_other_commands_work() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = ServeProcess::start(dir.path(), &[]);
    // Its hot-operation cache is exact only while one process writes the file.
    let second = run_longrun(dir.path(), &["serve", "--listen", "127.0.0.1:0"]);
    assert_eq!(second.status.code(), Some(2), "{second:?}");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("another longrun serve is using"), "{stderr}");
    // Commands that only visit the file still run beside the server.
    assert!(cli_key(dir.path(), &[], "*", "admin").starts_with("lr_"));
    assert!(first.terminate().success());
    // Once it has stopped, the directory is free again.
    let mut again = ServeProcess::start(dir.path(), &[]);
    assert!(again.terminate().success());
}
