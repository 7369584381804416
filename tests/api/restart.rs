//! Nothing acknowledged is lost across a restart on the same data dir.

use serde_json::{Value, json};

use crate::helpers::{TestApp, id_of};

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
