//! The resources the emulated initiators make (issue 22 §2): in demo mode
//! an SDK that fetches an operation's `resourceLocation` after a success
//! finds the object, in the real API's shape; without `--demo` those
//! routes are unknown.

use longrun::model::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, tenant};

/// `GET {address}{path}` with a Face key: status and body.
async fn face_get(app: &TestApp, path: &str, key: &str) -> (StatusCode, Value) {
    let response =
        app.client.get(format!("{}{path}", app.address)).header("Ocp-Apim-Subscription-Key", key).send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

/// Starts a Face call and returns its operation's status path.
async fn face_start(app: &TestApp, path: &str, key: &str, body: Value) -> String {
    let response = app
        .client
        .post(format!("{}{path}", app.address))
        .header("Ocp-Apim-Subscription-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    format!("/face/v1.0{}", response.headers()["operation-location"].to_str().unwrap())
}

#[tokio::test]
async fn a_taken_snapshot_and_the_object_it_was_applied_to_are_served_once_their_operations_succeed() {
    let app = TestApp::spawn().await;
    let key = app.key("accounts/contoso", Role::Produce).await;
    let subscription = uuid::Uuid::new_v4();
    let take =
        json!({"type": "LargePersonGroup", "objectId": "source", "applyScope": [subscription], "userData": "v2"});
    let status = face_start(&app, "/face/v1.0/snapshots", &key, take).await;
    let snapshot_id = status.rsplit('/').next().unwrap().to_owned();

    let (early, body) = face_get(&app, &format!("/face/v1.0/snapshots/{snapshot_id}"), &key).await;
    assert_eq!((early, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("SnapshotNotFound")));
    app.run_scripts_after(10).await;
    app.run_scripts_after(10).await;
    let (_, done) = face_get(&app, &status, &key).await;
    assert_eq!(done["status"], "succeeded");
    let location = done["resourceLocation"].as_str().unwrap();
    assert_eq!(location, format!("/snapshots/{snapshot_id}"), "the snapshot is named after its operation");

    let (found, snapshot) = face_get(&app, &format!("/face/v1.0{location}"), &key).await;
    assert_eq!(found, StatusCode::OK);
    assert_eq!(snapshot["id"], snapshot_id.as_str());
    assert_eq!(snapshot["account"], "accounts/contoso");
    assert_eq!(snapshot["type"], "LargePersonGroup");
    assert_eq!(snapshot["applyScope"], json!([subscription]));
    assert_eq!(snapshot["userData"], "v2");
    assert!(snapshot["createdTime"].as_str().unwrap().ends_with('Z'));
    let stranger = app.key("accounts/fabrikam", Role::Read).await;
    let (hidden, _) = face_get(&app, &format!("/face/v1.0{location}"), &stranger).await;
    assert_eq!(hidden, StatusCode::NOT_FOUND, "another account's snapshot stays out of reach");

    let apply = json!({"objectId": "copy", "mode": "CreateNew"});
    let status = face_start(&app, &format!("/face/v1.0/snapshots/{snapshot_id}/apply"), &key, apply).await;
    let (early, _) = face_get(&app, "/face/v1.0/largepersongroups/copy", &key).await;
    assert_eq!(early, StatusCode::NOT_FOUND, "the target exists only once the apply succeeded");
    app.run_scripts_after(10).await;
    app.run_scripts_after(10).await;
    let (_, done) = face_get(&app, &status, &key).await;
    assert_eq!(done["resourceLocation"], "/largepersongroups/copy", "the target's type is the snapshot's");
    let (found, group) = face_get(&app, "/face/v1.0-preview/largepersongroups/copy", &key).await;
    assert_eq!(found, StatusCode::OK);
    assert_eq!(group, json!({"largePersonGroupId": "copy", "name": "copy"}));
    let (other_type, body) = face_get(&app, "/face/v1.0/persongroups/copy", &key).await;
    assert_eq!((other_type, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("PersonGroupNotFound")));
    let (other_account, _) = face_get(&app, "/face/v1.0/largepersongroups/copy", &stranger).await;
    assert_eq!(other_account, StatusCode::NOT_FOUND);
    let (bad, body) = face_get(&app, "/face/v1.0/facelists/NOT-VALID", &key).await;
    assert_eq!((bad, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("BadArgument")));
}

#[tokio::test]
async fn a_dev_box_is_served_as_its_newest_action_left_it_until_a_delete_succeeds() {
    let app = TestApp::spawn().await;
    let key = app.key("projects/myProject", Role::Produce).await;
    let base = "/projects/myProject/users/me/devboxes/box-1";
    let get = || async {
        let response = app.get_bearer(&format!("{base}?api-version=2025-02-01"), &key).await;
        (response.status(), response.json::<Value>().await.unwrap())
    };
    let act = |action: &'static str| {
        let url = match action {
            "delete" => format!("{}{base}?api-version=2025-02-01", app.address),
            _ => format!("{}{base}:{action}?api-version=2025-02-01", app.address),
        };
        let request = if action == "delete" { app.client.delete(url) } else { app.client.post(url) };
        let request = request.bearer_auth(&key);
        async move { assert_eq!(request.send().await.unwrap().status(), StatusCode::ACCEPTED) }
    };

    let (unknown, body) = get().await;
    assert_eq!((unknown, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("NotFound")));
    act("stop").await;
    let (_, stopping) = get().await;
    assert_eq!(stopping["provisioningState"], "Stopping");
    app.run_scripts_after(10).await;
    app.run_scripts_after(10).await;
    let (found, stopped) = get().await;
    assert_eq!(found, StatusCode::OK);
    assert_eq!(
        (&stopped["name"], &stopped["projectName"], &stopped["user"]),
        (&json!("box-1"), &json!("myProject"), &json!("me"))
    );
    assert_eq!((&stopped["actionState"], &stopped["powerState"]), (&json!("Stopped"), &json!("Deallocated")));

    act("start").await;
    app.run_scripts_after(20).await;
    app.run_scripts_after(20).await;
    let (_, started) = get().await;
    assert_eq!((&started["powerState"], &started["provisioningState"]), (&json!("Running"), &json!("Succeeded")));
    assert_eq!(started["uniqueId"], stopped["uniqueId"], "the same box");

    act("delete").await;
    let (_, deleting) = get().await;
    assert_eq!(deleting["provisioningState"], "Deleting");
    app.run_scripts_after(30).await;
    app.run_scripts_after(30).await;
    let (gone, _) = get().await;
    assert_eq!(gone, StatusCode::NOT_FOUND, "a deleted box is gone");
    let other = app.key("projects/otherProject", Role::Read).await;
    let response = app.get_bearer(&format!("{base}?api-version=2025-02-01"), &other).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_uploaded_image_is_served_at_its_resource_location_and_as_metadata() {
    let app = TestApp::spawn().await;
    let tenant = tenant();
    let key = app.key(&format!("tenants/{tenant}"), Role::Produce).await;
    let response = app
        .client
        .post(format!("{}/v2/tenants/{tenant}/images", app.address))
        .bearer_auth(&key)
        .header("content-type", "application/octet-stream")
        .body(vec![7u8; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let operation: Value = response.json().await.unwrap();
    let id = operation["OperationId"].as_str().unwrap().to_owned();
    let image = format!("/v2/tenants/{tenant}/images/{id}");
    assert_eq!(app.get_bearer(&image, &key).await.status(), StatusCode::NOT_FOUND, "not uploaded yet");
    app.run_scripts_after(10).await;
    app.run_scripts_after(10).await;
    let status: Value =
        app.get_bearer(&format!("/v2/tenants/{tenant}/operations/{id}"), &key).await.json().await.unwrap();
    assert_eq!(status["ResourceLocation"], image.as_str());
    for path in [image.clone(), format!("{image}/metadata")] {
        let response = app.get_bearer(&path, &key).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let metadata: Value = response.json().await.unwrap();
        assert_eq!(metadata["Id"], id.as_str());
        assert_eq!(metadata["Type"], 10);
    }
    let elsewhere = format!("/v2/tenants/{}/images/{id}", crate::helpers::tenant());
    let response = app.get_bearer(&elsewhere, &app.admin_key).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND, "an image belongs to its tenant");
    let problems: Value = response.json().await.unwrap();
    assert_eq!(problems[0]["ErrorCode"], "NotFound");
}

#[tokio::test]
async fn without_demo_mode_the_emulated_resources_are_unknown_routes() {
    let app = TestApp::spawn_without_demo().await;
    let id = uuid::Uuid::now_v7();
    for (path, face) in [
        (format!("/face/v1.0/snapshots/{id}"), true),
        ("/face/v1.0/persongroups/group".to_owned(), true),
        ("/projects/myProject/users/me/devboxes/box-1?api-version=2025-02-01".to_owned(), false),
        (format!("/v2/tenants/{}/images/{id}", tenant()), false),
    ] {
        let request = app.client.get(format!("{}{path}", app.address));
        let request = if face {
            request.header("Ocp-Apim-Subscription-Key", &app.admin_key)
        } else {
            request.bearer_auth(&app.admin_key)
        };
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let body = response.text().await.unwrap();
        assert!(body.contains("no resource exists at"), "{path}: {body}");
    }
}
