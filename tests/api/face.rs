//! The Face snapshot dialect over HTTP (seed 002, WIRE.md).

use longrun::model::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_timestamp, id_of, keys_of, unknown_id};

async fn get(app: &TestApp, base: &str, id: &str, key: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(format!("{}/face/{base}/operations/{id}", app.address));
    if let Some(key) = key {
        request = request.header("Ocp-Apim-Subscription-Key", key);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_snapshot_operation_reads_like_the_seed_under_both_base_paths() {
    let app = TestApp::spawn().await;
    let key = app.key("accounts/contoso", Role::Read).await;
    let id = id_of(&app.create_ok("accounts/contoso", "takeSnapshot").await);

    let body: Value = get(&app, "v1.0-preview", &id, Some(&key)).await.json().await.unwrap();
    assert_eq!(keys_of(&body), ["createdTime", "lastActionTime", "message", "resourceLocation", "status"]);
    assert_eq!(body["status"], "notStarted");

    app.patch_ok(&id, json!({"state": "Running"})).await;
    let running = get(&app, "v1.0", &id, Some(&key)).await;
    assert_eq!(running.status(), StatusCode::OK);
    assert!(running.headers().contains_key("retry-after"));
    assert_eq!(running.json::<Value>().await.unwrap()["status"], "running");

    let snapshot = format!("/snapshots/{}", unknown_id());
    app.patch_ok(&id, json!({"state": "Succeeded", "resourceLocation": snapshot})).await;
    for base in ["v1.0-preview", "v1.0"] {
        let response = get(&app, base, &id, Some(&key)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/json; charset=utf-8");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            keys_of(&body),
            ["createdTime", "finishedTime", "lastActionTime", "message", "resourceLocation", "status"]
        );
        assert_eq!(body["status"], "succeeded");
        assert_eq!(body["resourceLocation"], snapshot.as_str());
        assert_eq!(body["message"], Value::Null);
        for field in ["createdTime", "lastActionTime", "finishedTime"] {
            assert_timestamp(&body[field], 7);
        }
    }
}

#[tokio::test]
async fn failures_and_cancellations_are_failed_with_a_message() {
    let app = TestApp::spawn().await;
    let failed = id_of(&app.create_ok("accounts/contoso", "applySnapshot").await);
    app.patch_ok(
        &failed,
        json!({"state": "Failed", "error": {"code": "TargetChanged", "message": "the target was edited"}}),
    )
    .await;
    let body: Value = get(&app, "v1.0", &failed, Some(&app.admin_key)).await.json().await.unwrap();
    assert_eq!((body["status"].clone(), body["message"].clone()), (json!("failed"), json!("the target was edited")));

    let canceled = id_of(&app.create_ok("accounts/contoso", "applySnapshot").await);
    app.client
        .post(format!("{}/v1/operations/{canceled}:cancel", app.address))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    let body: Value = get(&app, "v1.0", &canceled, Some(&app.admin_key)).await.json().await.unwrap();
    assert_eq!(body["status"], "failed");
    assert!(body["message"].as_str().unwrap().contains("canceled"));
}

async fn assert_api_error(response: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["content-type"], "application/json; charset=utf-8");
    let body: Value = response.json().await.unwrap();
    assert_eq!(keys_of(&body), ["error"]);
    assert_eq!(keys_of(&body["error"]), ["code", "message"]);
    assert_eq!(body["error"]["code"], code);
    body
}

#[tokio::test]
async fn a_wrong_or_missing_key_gets_the_gateways_401() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("accounts/contoso", "takeSnapshot").await);
    let expected = json!({"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}});
    for key in [None, Some("lr_wrong"), Some("")] {
        let body = assert_api_error(get(&app, "v1.0", &id, key).await, StatusCode::UNAUTHORIZED, "401").await;
        assert_eq!(body, expected);
    }
}

#[tokio::test]
async fn malformed_ids_are_400_and_unknown_or_foreign_ids_are_404() {
    let app = TestApp::spawn().await;
    let key = app.key("accounts/contoso", Role::Read).await;
    assert_api_error(get(&app, "v1.0", "not-a-uuid", Some(&key)).await, StatusCode::BAD_REQUEST, "BadArgument").await;
    let unknown = unknown_id();
    let body =
        assert_api_error(get(&app, "v1.0", &unknown, Some(&key)).await, StatusCode::NOT_FOUND, "OperationNotFound")
            .await;
    assert_eq!(body["error"]["message"], format!("Operation '{unknown}' was not found."));

    let theirs = id_of(&app.create_ok("accounts/fabrikam", "takeSnapshot").await);
    let foreign = get(&app, "v1.0", &theirs, Some(&key)).await.text().await.unwrap();
    let missing = get(&app, "v1.0", &unknown, Some(&key)).await.text().await.unwrap();
    assert_eq!(foreign.replace(&theirs, "ID"), missing.replace(&unknown, "ID"));

    // A project operation is not a Face operation, even for a `*` key.
    let project_op = id_of(&app.create_ok("projects/demo", "deleteDevBox").await);
    assert_api_error(
        get(&app, "v1.0", &project_op, Some(&app.admin_key)).await,
        StatusCode::NOT_FOUND,
        "OperationNotFound",
    )
    .await;
}

#[tokio::test]
async fn unknown_routes_under_face_answer_in_this_envelope() {
    let app = TestApp::spawn().await;
    let response = app.client.get(format!("{}/face/v1.0/persongroups", app.address)).send().await.unwrap();
    assert_api_error(response, StatusCode::NOT_FOUND, "NotFound").await;
}
