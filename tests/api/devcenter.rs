//! The Azure Dev Center dialect over HTTP (seed 001, WIRE.md).

use longrun::model::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{RETRY_AFTER, TestApp, assert_timestamp, id_of, keys_of, unknown_id};

fn status_path(project: &str, id: &str) -> String {
    format!("/projects/{project}/operationstatuses/{id}?api-version=2025-02-01")
}

#[tokio::test]
async fn a_running_operation_reads_like_the_seed_sample() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("projects/myProject", "deleteDevBox").await);
    app.patch_ok(&id, json!({"state": "Running"})).await;
    let response = app
        .client
        .get(format!("{}{}", app.address, status_path("myProject", &id)))
        .bearer_auth(&app.admin_key)
        .header("x-ms-client-request-id", "9f1c-test")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/json; charset=utf-8");
    assert_eq!(headers["retry-after"], RETRY_AFTER.to_string().as_str());
    assert_eq!(headers["x-ms-client-request-id"], "9f1c-test");
    assert!(uuid::Uuid::parse_str(headers["x-ms-request-id"].to_str().unwrap()).is_ok());
    let body: Value = response.json().await.unwrap();
    assert_eq!(keys_of(&body), ["id", "name", "startTime", "status"]);
    assert_eq!(body["id"], format!("/projects/myProject/operationStatuses/{id}").as_str());
    assert_eq!(body["name"], id.as_str());
    assert_eq!(body["status"], "Running");
    assert_timestamp(&body["startTime"], 3);
}

#[tokio::test]
async fn request_ids_are_unique_per_response() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("projects/myProject", "deleteDevBox").await);
    let first = app.get_bearer(&status_path("myProject", &id), &app.admin_key).await;
    let second = app.get_bearer(&status_path("myProject", &id), &app.admin_key).await;
    assert_ne!(first.headers()["x-ms-request-id"], second.headers()["x-ms-request-id"]);
}

#[tokio::test]
async fn terminal_states_map_to_the_sdks_vocabulary() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            json!({"state": "Succeeded", "percentComplete": 100, "resourceLocation": "/boxes/b1", "properties": {"k": "v"}}),
            "Succeeded",
        ),
        (json!({"state": "Failed", "error": {"code": "QuotaExceeded", "message": "no capacity"}}), "Failed"),
        (json!({"state": "CompleteWithErrors", "error": {"code": "Partial", "message": "one disk kept"}}), "Succeeded"),
    ];
    for (patch, status) in cases {
        let id = id_of(&app.create_ok("projects/myProject", "deleteDevBox").await);
        app.patch_ok(&id, json!({"state": "Running", "percentComplete": 10, "properties": {"k": "v"}})).await;
        let running: Value = app.get_bearer(&status_path("myProject", &id), &app.admin_key).await.json().await.unwrap();
        assert!(running.get("properties").is_none(), "properties only once succeeded");
        assert_eq!(running["percentComplete"], 10.0);
        app.patch_ok(&id, patch.clone()).await;
        let response = app.get_bearer(&status_path("myProject", &id), &app.admin_key).await;
        assert!(response.headers().get("retry-after").is_none());
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], status, "{patch}");
        assert_timestamp(&body["endTime"], 3);
        if let Some(error) = patch.get("error") {
            assert_eq!(body["error"], *error);
        }
        if patch["state"] == "Succeeded" {
            assert_eq!(
                (body["resourceId"].clone(), body["properties"].clone()),
                (json!("/boxes/b1"), json!({"k": "v"}))
            );
        }
    }
    let id = id_of(&app.create_ok("projects/myProject", "deleteDevBox").await);
    app.client
        .post(format!("{}/v1/operations/{id}:cancel", app.address))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    let body: Value = app.get_bearer(&status_path("myProject", &id), &app.admin_key).await.json().await.unwrap();
    assert_eq!(body["status"], "Canceled");
}

async fn assert_error(response: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["x-ms-error-code"], code);
    assert_eq!(response.headers()["content-type"], "application/json; charset=utf-8");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], code);
    assert!(body["error"]["message"].is_string());
    body
}

#[tokio::test]
async fn api_version_is_required_and_must_be_known() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("projects/myProject", "deleteDevBox").await);
    let missing = app.get_bearer(&format!("/projects/myProject/operationstatuses/{id}"), &app.admin_key).await;
    let body = assert_error(missing, StatusCode::BAD_REQUEST, "MissingApiVersionParameter").await;
    assert_eq!(
        body,
        json!({"error": {"code": "MissingApiVersionParameter", "message": "The api-version query parameter (?api-version=) is required for all requests."}})
    );
    let unknown = app
        .get_bearer(&format!("/projects/myProject/operationstatuses/{id}?api-version=1999-01-01"), &app.admin_key)
        .await;
    let body = assert_error(unknown, StatusCode::BAD_REQUEST, "UnsupportedApiVersionValue").await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("Unsupported api-version '1999-01-01'. The supported api-versions are '"), "{message}");
    assert!(message.ends_with("2025-02-01'."), "{message}");
    let older = app
        .get_bearer(&format!("/projects/myProject/operationstatuses/{id}?api-version=2023-04-01"), &app.admin_key)
        .await;
    assert_eq!(older.status(), StatusCode::OK);
}

#[tokio::test]
async fn malformed_names_are_400_and_unknown_or_foreign_ids_are_404() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("projects/theirProject", "deleteDevBox").await);
    for (path, target) in [
        (status_path("ab", &id), "projectName"),
        (status_path("-abc", &id), "projectName"),
        (status_path("myProject", "not-a-uuid"), "operationId"),
        (status_path("myProject", &format!("{{{id}}}")), "operationId"),
    ] {
        let body =
            assert_error(app.get_bearer(&path, &app.admin_key).await, StatusCode::BAD_REQUEST, "InvalidParameter")
                .await;
        assert_eq!(body["error"]["target"], target, "{path}");
    }
    let unknown = unknown_id();
    let body = assert_error(
        app.get_bearer(&status_path("myProject", &unknown), &app.admin_key).await,
        StatusCode::NOT_FOUND,
        "OperationNotFound",
    )
    .await;
    assert_eq!(body["error"]["message"], format!("Operation '{unknown}' was not found."));
    // The id exists, but in another project: same 404.
    assert_error(
        app.get_bearer(&status_path("myProject", &id), &app.admin_key).await,
        StatusCode::NOT_FOUND,
        "OperationNotFound",
    )
    .await;
    // A key for another project, through the right URL: same 404.
    let other = app.key("projects/myProject", Role::Read).await;
    assert_error(
        app.get_bearer(&status_path("theirProject", &id), &other).await,
        StatusCode::NOT_FOUND,
        "OperationNotFound",
    )
    .await;
}

#[tokio::test]
async fn missing_or_wrong_credentials_are_401_with_a_bearer_challenge() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("projects/myProject", "deleteDevBox").await);
    let anonymous = app.client.get(format!("{}{}", app.address, status_path("myProject", &id))).send().await.unwrap();
    assert_eq!(
        anonymous.headers()["www-authenticate"],
        r#"Bearer realm="longrun", error="invalid_token", error_description="No credentials were presented.""#
    );
    assert_error(anonymous, StatusCode::UNAUTHORIZED, "Unauthorized").await;
    assert_error(
        app.get_bearer(&status_path("myProject", &id), "lr_wrong").await,
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
    )
    .await;
}

#[tokio::test]
async fn unknown_routes_under_projects_answer_in_this_envelope() {
    let app = TestApp::spawn().await;
    let response = app.get_bearer("/projects/myProject/devboxes", &app.admin_key).await;
    assert_error(response, StatusCode::NOT_FOUND, "NotFound").await;
}
