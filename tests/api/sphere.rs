//! The Azure Sphere dialect over HTTP (seed 000, WIRE.md).

use longrun::model::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{RETRY_AFTER, TestApp, assert_timestamp, id_of, keys_of, tenant, unknown_id};

fn typed(tenant: &str, id: &str) -> String {
    format!("/v2/tenants/{tenant}/operationTypes/imageUpload/operations/{id}")
}

#[tokio::test]
async fn an_image_upload_reads_as_a_pascal_case_operation_with_integer_enums() {
    let app = TestApp::spawn().await;
    let tenant = tenant();
    let id = id_of(&app.create_ok(&format!("tenants/{tenant}"), "imageUpload").await);
    app.patch_ok(&id, json!({"state": "Running", "percentComplete": 40})).await;

    let response = app.get_bearer(&typed(&tenant, &id), &app.admin_key).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json; charset=utf-8");
    assert_eq!(response.headers()["retry-after"], RETRY_AFTER.to_string().as_str());
    assert_eq!(response.headers()["etag"], "\"2\"");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        keys_of(&body),
        [
            "CompletedDateUTC",
            "CreatedDateUTC",
            "DetailsLocation",
            "Error",
            "OperationId",
            "OperationType",
            "ResourceLocation",
            "StartedDateUTC",
            "State",
            "TenantId"
        ]
    );
    assert_eq!(body["OperationId"], id.as_str());
    assert_eq!(body["OperationType"], 7);
    assert_eq!(body["State"], 1);
    assert_eq!(body["TenantId"], tenant.as_str());
    assert_timestamp(&body["CreatedDateUTC"], 7);
    assert_timestamp(&body["StartedDateUTC"], 7);
    assert_eq!(body["CompletedDateUTC"], Value::Null);
    assert_eq!(body["ResourceLocation"], Value::Null);
    assert_eq!(body["DetailsLocation"], typed(&tenant, &id).as_str());
    assert_eq!(body["Error"], Value::Null);

    app.patch_ok(&id, json!({"state": "Succeeded", "resourceLocation": "/images/1"})).await;
    let generic = app.get_bearer(&format!("/v2/tenants/{tenant}/operations/{id}"), &app.admin_key).await;
    assert_eq!(generic.status(), StatusCode::OK);
    assert!(generic.headers().get("retry-after").is_none(), "terminal: no Retry-After");
    let body: Value = generic.json().await.unwrap();
    assert_eq!((body["State"].clone(), body["ResourceLocation"].clone()), (json!(2), json!("/images/1")));
    assert_timestamp(&body["CompletedDateUTC"], 7);
}

#[tokio::test]
async fn failed_and_canceled_operations_are_state_3_with_an_error() {
    let app = TestApp::spawn().await;
    let tenant = tenant();
    let failed = id_of(&app.create_ok(&format!("tenants/{tenant}"), "imageUpload").await);
    app.patch_ok(
        &failed,
        json!({"state": "Failed", "error": {"code": "OperationFailed", "message": "image signature invalid"}}),
    )
    .await;
    let body: Value = app.get_bearer(&typed(&tenant, &failed), &app.admin_key).await.json().await.unwrap();
    assert_eq!(body["State"], 3);
    assert_eq!(body["Error"], json!({"Code": 0, "Message": "image signature invalid"}));

    let canceled = id_of(&app.create_ok(&format!("tenants/{tenant}"), "imageUpload").await);
    let url = format!("{}/v1/operations/{canceled}:cancel", app.address);
    app.client.post(url).bearer_auth(&app.admin_key).send().await.unwrap();
    let body: Value = app.get_bearer(&typed(&tenant, &canceled), &app.admin_key).await.json().await.unwrap();
    assert_eq!((body["State"].clone(), body["Error"]["Code"].clone()), (json!(3), json!(0)));
    assert!(body["Error"]["Message"].as_str().unwrap().contains("canceled"));

    let partial = id_of(&app.create_ok(&format!("tenants/{tenant}"), "bulkDeviceClaim").await);
    app.patch_ok(
        &partial,
        json!({"state": "CompleteWithErrors", "error": {"code": "Conflict", "message": "2 devices already claimed"}}),
    )
    .await;
    let url = format!("/v2/tenants/{tenant}/operationTypes/bulkDeviceClaim/operations/{partial}");
    let body: Value = app.get_bearer(&url, &app.admin_key).await.json().await.unwrap();
    assert_eq!(
        (body["State"].clone(), body["OperationType"].clone(), body["Error"]["Code"].clone()),
        (json!(4), json!(11), json!(7))
    );
}

async fn assert_problem(response: reqwest::Response, status: StatusCode, code: &str, instance: &str) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["content-type"], "application/problem+json; charset=utf-8");
    let body: Value = response.json().await.unwrap();
    let problems = body.as_array().expect("an array of PublicApiErrorDetails");
    assert_eq!(problems.len(), 1);
    let problem = &problems[0];
    assert_eq!(keys_of(problem), ["Detail", "ErrorCode", "Extensions", "Instance", "Status", "Title", "Type"]);
    assert_eq!(problem["Status"], status.as_u16());
    assert_eq!(problem["Title"], status.canonical_reason().unwrap());
    assert_eq!(problem["Type"], "about:blank");
    assert_eq!(problem["ErrorCode"], code);
    assert_eq!(problem["Instance"], instance);
    assert_eq!(problem["Extensions"], json!({}));
    problem.clone()
}

#[tokio::test]
async fn errors_are_rfc_7807_arrays_with_the_right_status() {
    let app = TestApp::spawn().await;
    let tenant = tenant();
    let id = id_of(&app.create_ok(&format!("tenants/{tenant}"), "imageUpload").await);

    let path = typed(&tenant, &id);
    let anonymous = app.client.get(format!("{}{path}", app.address)).send().await.unwrap();
    assert!(anonymous.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    assert_problem(anonymous, StatusCode::UNAUTHORIZED, "Unauthorized", &path).await;
    assert_problem(app.get_bearer(&path, "lr_wrong").await, StatusCode::UNAUTHORIZED, "Unauthorized", &path).await;

    let bad_tenant = format!("/v2/tenants/not-a-uuid/operations/{id}");
    assert_problem(
        app.get_bearer(&bad_tenant, &app.admin_key).await,
        StatusCode::BAD_REQUEST,
        "InvalidParameter",
        &bad_tenant,
    )
    .await;
    let bad_id = format!("/v2/tenants/{tenant}/operations/123");
    assert_problem(app.get_bearer(&bad_id, &app.admin_key).await, StatusCode::BAD_REQUEST, "InvalidParameter", &bad_id)
        .await;

    let unknown = unknown_id();
    let missing = typed(&tenant, &unknown);
    let problem = assert_problem(
        app.get_bearer(&missing, &app.admin_key).await,
        StatusCode::NOT_FOUND,
        "OperationNotFound",
        &missing,
    )
    .await;
    assert_eq!(problem["Detail"], format!("No operation {unknown} in this tenant."));

    let wrong_type = format!("/v2/tenants/{tenant}/operationTypes/deviceClaim/operations/{id}");
    assert_problem(
        app.get_bearer(&wrong_type, &app.admin_key).await,
        StatusCode::NOT_FOUND,
        "OperationNotFound",
        &wrong_type,
    )
    .await;
    let nowhere = format!("/v2/tenants/{tenant}/devices");
    assert_problem(app.get_bearer(&nowhere, &app.admin_key).await, StatusCode::NOT_FOUND, "NotFound", &nowhere).await;
}

#[tokio::test]
async fn another_tenants_operation_is_indistinguishable_from_a_missing_one() {
    let app = TestApp::spawn().await;
    let (mine, theirs) = (tenant(), tenant());
    let their_op = id_of(&app.create_ok(&format!("tenants/{theirs}"), "imageUpload").await);
    let my_key = app.key(&format!("tenants/{mine}"), Role::Read).await;

    // Through their URL with my key, and through my URL with their id.
    for path in [typed(&theirs, &their_op), typed(&mine, &their_op)] {
        let foreign = app.get_bearer(&path, &my_key).await;
        assert_eq!(foreign.status(), StatusCode::NOT_FOUND);
        let foreign = foreign.text().await.unwrap();
        let never = unknown_id();
        let missing = app.get_bearer(&path.replace(&their_op, &never), &my_key).await.text().await.unwrap();
        assert_eq!(foreign.replace(&their_op, "ID"), missing.replace(&never, "ID"));
    }
}

#[tokio::test]
async fn kinds_outside_the_sphere_enum_do_not_exist_in_this_dialect() {
    let app = TestApp::spawn().await;
    let tenant = tenant();
    // Only Sphere kinds may be created in a tenant scope in the first place.
    let refused = app.create(json!({"scope": format!("tenants/{tenant}"), "kind": "takeSnapshot"})).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    // A project operation is not reachable through a Sphere URL.
    let project_op = id_of(&app.create_ok("projects/demo", "deleteDevBox").await);
    let response = app.get_bearer(&format!("/v2/tenants/{tenant}/operations/{project_op}"), &app.admin_key).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn if_none_match_with_the_current_etag_is_304() {
    let app = TestApp::spawn().await;
    let tenant = tenant();
    let id = id_of(&app.create_ok(&format!("tenants/{tenant}"), "imageUpload").await);
    let url = format!("{}{}", app.address, typed(&tenant, &id));
    let response =
        app.client.get(&url).bearer_auth(&app.admin_key).header("If-None-Match", "\"1\"").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(response.headers()["etag"], "\"1\"");
    let response =
        app.client.get(&url).bearer_auth(&app.admin_key).header("If-None-Match", "\"0\"").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
