//! The producer API: create, read, patch, cancel, list.

use longrun::model::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{RETRY_AFTER, TestApp, id_of, tenant, unknown_id};

#[tokio::test]
async fn create_returns_201_with_location_and_the_dialect_url_of_its_scope() {
    let app = TestApp::spawn().await;
    let tenant = tenant();
    let cases = [
        (
            format!("tenants/{tenant}"),
            "imageUpload",
            format!("/v2/tenants/{tenant}/operationTypes/imageUpload/operations/"),
        ),
        ("projects/myProject".to_owned(), "deleteDevBox", "/projects/myProject/operationstatuses/".to_owned()),
        ("accounts/contoso".to_owned(), "takeSnapshot", "/face/v1.0-preview/operations/".to_owned()),
    ];
    for (scope, kind, prefix) in cases {
        let response = app.create(json!({"scope": scope, "kind": kind})).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let headers = response.headers().clone();
        let body: serde_json::Value = response.json().await.unwrap();
        let id = id_of(&body);
        assert_eq!(headers["location"], format!("/v1/operations/{id}").as_str());
        let operation_location = headers["operation-location"].to_str().unwrap();
        assert!(operation_location.starts_with(&prefix), "{operation_location}");
        assert!(operation_location.contains(&id));
        if scope.starts_with("projects/") {
            assert!(operation_location.ends_with("?api-version=2025-02-01"), "{operation_location}");
        }
        assert_eq!(headers["retry-after"], RETRY_AFTER.to_string().as_str());
        assert_eq!(headers["etag"], "\"1\"");
        assert_eq!(body["state"], "NotStarted");
        assert_eq!(body["scope"], scope.as_str());
        assert_eq!(body["operationLocation"], operation_location);
    }
}

#[tokio::test]
async fn a_reused_client_id_replays_the_same_request_and_refuses_a_different_one() {
    let app = TestApp::spawn().await;
    let id = unknown_id();
    let body = json!({"scope": "projects/demo", "kind": "deleteDevBox", "id": id, "properties": {"a": 1}});
    assert_eq!(app.create(body.clone()).await.status(), StatusCode::CREATED);
    let again = app.create(body).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.json::<serde_json::Value>().await.unwrap()["id"], id.as_str());
    let different = app.create(json!({"scope": "projects/demo", "kind": "deleteDevBox", "id": id})).await;
    assert_eq!(different.status(), StatusCode::CONFLICT);
    assert_eq!(different.headers()["x-ms-error-code"], "OperationIdInUse");
}

#[tokio::test]
async fn the_operation_id_header_chooses_the_id() {
    let app = TestApp::spawn().await;
    let id = unknown_id();
    let response = app
        .client
        .post(format!("{}/v1/operations", app.address))
        .bearer_auth(&app.admin_key)
        .header("Operation-Id", &id)
        .json(&json!({"scope": "projects/demo", "kind": "deleteDevBox"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.json::<serde_json::Value>().await.unwrap()["id"], id.as_str());
}

#[tokio::test]
async fn invalid_create_requests_are_400_in_the_azure_core_envelope() {
    let app = TestApp::spawn().await;
    let cases = [
        (json!({"scope": "projects/demo"}), "InvalidRequestContent", None),
        (json!({"scope": "buckets/x", "kind": "a"}), "InvalidParameter", Some("scope")),
        (json!({"scope": "projects/demo", "kind": "Not-Camel"}), "InvalidParameter", Some("kind")),
        (json!({"scope": format!("tenants/{}", tenant()), "kind": "deleteDevBox"}), "InvalidParameter", Some("kind")),
        (json!({"scope": "projects/demo", "kind": "a", "id": "nope"}), "InvalidParameter", Some("id")),
        (json!({"scope": "projects/demo", "kind": "a", "colour": "red"}), "InvalidRequestContent", None),
    ];
    for (body, code, target) in cases {
        let response = app.create(body.clone()).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(response.headers()["x-ms-error-code"], code, "{body}");
        let error: serde_json::Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], code);
        assert!(error["error"]["message"].as_str().unwrap().len() > 5);
        assert_eq!(error["error"]["target"].as_str(), target, "{body}");
    }
    let not_json = app
        .client
        .post(format!("{}/v1/operations", app.address))
        .bearer_auth(&app.admin_key)
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    assert_eq!(not_json.headers()["x-ms-error-code"], "InvalidRequestContent");
    let huge = json!({"scope": "projects/demo", "kind": "a", "properties": {"blob": "x".repeat(300_000)}});
    let too_large = app.create(huge).await;
    assert_eq!(too_large.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(too_large.headers()["x-ms-error-code"], "RequestBodyTooLarge");
}

#[tokio::test]
async fn patch_advances_the_operation_and_checks_if_match() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("projects/demo", "deleteDevBox").await);
    let url = format!("{}/v1/operations/{id}", app.address);
    let stale = app
        .client
        .patch(&url)
        .bearer_auth(&app.admin_key)
        .header("If-Match", "\"7\"")
        .json(&json!({"state": "Running"}))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(stale.headers()["x-ms-error-code"], "PreconditionFailed");

    let fresh = app
        .client
        .patch(&url)
        .bearer_auth(&app.admin_key)
        .header("If-Match", "\"1\"")
        .header("Content-Type", "application/merge-patch+json")
        .body(r#"{"state": "Running", "percentComplete": 40, "properties": {"step": "copy"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), StatusCode::OK);
    assert_eq!(fresh.headers()["etag"], "\"2\"");
    let running: serde_json::Value = fresh.json().await.unwrap();
    assert_eq!((running["state"].as_str(), running["percentComplete"].as_f64()), (Some("Running"), Some(40.0)));
    assert!(running["startedAt"].is_string());

    let done =
        app.patch_ok(&id, json!({"state": "Succeeded", "percentComplete": 100, "properties": {"step": null}})).await;
    assert_eq!(done["state"], "Succeeded");
    assert_eq!(done["properties"], json!({}));
    assert!(done["finishedAt"].is_string() && done["expiresAt"].is_string());
}

#[tokio::test]
async fn illegal_transitions_are_409_naming_the_current_state() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("projects/demo", "deleteDevBox").await);
    app.patch_ok(&id, json!({"state": "Running", "percentComplete": 50})).await;

    let backwards = app.patch(&id, json!({"state": "NotStarted"})).await;
    assert_eq!(backwards.status(), StatusCode::CONFLICT);
    let message = backwards.json::<serde_json::Value>().await.unwrap()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("Running"), "{message}");

    let regress = app.patch(&id, json!({"percentComplete": 10})).await;
    assert_eq!(regress.status(), StatusCode::CONFLICT);
    assert_eq!(regress.headers()["x-ms-error-code"], "ProgressDecreased");

    let failed_without_error = app.patch(&id, json!({"state": "Failed"})).await;
    assert_eq!(failed_without_error.status(), StatusCode::BAD_REQUEST);

    app.patch_ok(&id, json!({"state": "Failed", "error": {"code": "DiskFull", "message": "no space left"}})).await;
    let after_end = app.patch(&id, json!({"state": "Succeeded", "error": null})).await;
    assert_eq!(after_end.status(), StatusCode::CONFLICT);
    assert_eq!(after_end.headers()["x-ms-error-code"], "OperationTerminal");
    let message = after_end.json::<serde_json::Value>().await.unwrap()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("Failed"), "{message}");

    let read_only_field = app.patch(&id, json!({"createdAt": "2020-01-01T00:00:00Z"})).await;
    assert_eq!(read_only_field.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn cancel_ends_an_open_operation_and_is_refused_on_a_finished_one() {
    let app = TestApp::spawn().await;
    let open = id_of(&app.create_ok("projects/demo", "deleteDevBox").await);
    let cancel = |id: String| {
        let request = app.client.post(format!("{}/v1/operations/{id}:cancel", app.address)).bearer_auth(&app.admin_key);
        async move { request.send().await.unwrap() }
    };
    let canceled = cancel(open.clone()).await;
    assert_eq!(canceled.status(), StatusCode::OK);
    assert_eq!(canceled.json::<serde_json::Value>().await.unwrap()["state"], "Canceled");
    assert_eq!(cancel(open).await.status(), StatusCode::OK, "canceling twice is a no-op");

    let finished = id_of(&app.create_ok("projects/demo", "deleteDevBox").await);
    app.patch_ok(&finished, json!({"state": "Succeeded"})).await;
    let refused = cancel(finished).await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    assert_eq!(cancel(unknown_id()).await.status(), StatusCode::NOT_FOUND);
    let bogus =
        app.client.post(format!("{}/v1/operations/{}:explode", app.address, unknown_id())).bearer_auth(&app.admin_key);
    assert_eq!(bogus.send().await.unwrap().status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn get_supports_etags_and_304() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("projects/demo", "deleteDevBox").await);
    let url = format!("{}/v1/operations/{id}", app.address);
    let first = app.client.get(&url).bearer_auth(&app.admin_key).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let etag = first.headers()["etag"].clone();
    let again =
        app.client.get(&url).bearer_auth(&app.admin_key).header("If-None-Match", etag.clone()).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert!(again.text().await.unwrap().is_empty());
    app.patch_ok(&id, json!({"state": "Running"})).await;
    let changed = app.client.get(&url).bearer_auth(&app.admin_key).header("If-None-Match", etag).send().await.unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
}

#[tokio::test]
async fn keys_reach_only_their_scope_and_role() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("projects/theirs", "deleteDevBox").await);
    let other_scope = app.key("projects/mine", Role::Produce).await;
    let reader = app.key("projects/theirs", Role::Read).await;

    let foreign = app.get_bearer(&format!("/v1/operations/{id}"), &other_scope).await;
    assert_eq!(foreign.status(), StatusCode::NOT_FOUND);
    let unknown = app.get_bearer(&format!("/v1/operations/{}", unknown_id()), &other_scope).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get_bearer(&format!("/v1/operations/{id}"), &reader).await.status(), StatusCode::OK);

    let create_elsewhere = app.create_as(&other_scope, json!({"scope": "projects/theirs", "kind": "a"})).await;
    assert_eq!(create_elsewhere.status(), StatusCode::FORBIDDEN);
    let read_only = app.create_as(&reader, json!({"scope": "projects/theirs", "kind": "a"})).await;
    assert_eq!(read_only.status(), StatusCode::FORBIDDEN);
    let patch = app
        .client
        .patch(format!("{}/v1/operations/{id}", app.address))
        .bearer_auth(&other_scope)
        .json(&json!({"state": "Running"}));
    assert_eq!(patch.send().await.unwrap().status(), StatusCode::NOT_FOUND);

    for bad in ["", "lr_nope"] {
        let response = app.get_bearer(&format!("/v1/operations/{id}"), bad).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    }
}

#[tokio::test]
async fn list_pages_newest_first_within_the_keys_scope() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(id_of(&app.create_ok("projects/listed", "deleteDevBox").await));
    }
    app.create_ok("projects/elsewhere", "deleteDevBox").await;
    let key = app.key("projects/listed", Role::Read).await;
    let mut next = Some("/v1/operations?maxPageSize=2".to_owned());
    let mut seen = Vec::new();
    while let Some(link) = next {
        let page: serde_json::Value = app.get_bearer(&link, &key).await.json().await.unwrap();
        seen.extend(page["value"].as_array().unwrap().iter().map(id_of));
        next = page["nextLink"].as_str().map(str::to_owned);
    }
    ids.reverse();
    assert_eq!(seen, ids);
    let forbidden = app.get_bearer("/v1/operations?scope=projects/elsewhere", &key).await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    let bad = app.get_bearer("/v1/operations?state=Done", &key).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn unknown_native_routes_are_404_in_the_native_envelope() {
    let app = TestApp::spawn().await;
    let response = app.get_bearer("/v1/nothing", &app.admin_key).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.headers()["x-ms-error-code"], "NotFound");
    let delete = app.client.delete(format!("{}/v1/operations", app.address)).send().await.unwrap();
    assert_eq!(delete.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(delete.headers()["x-ms-error-code"], "MethodNotAllowed");
}

#[tokio::test]
async fn healthz_answers() {
    let app = TestApp::spawn().await;
    let response = app.client.get(format!("{}/healthz", app.address)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_negative_zero_percent_complete_is_stored_and_served_as_zero() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("projects/zero", "deleteDevBox").await);
    let patched = app
        .client
        .patch(format!("{}/v1/operations/{id}", app.address))
        .bearer_auth(&app.admin_key)
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"state": "Running", "percentComplete": -0}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), StatusCode::OK);
    let answer = patched.text().await.unwrap();
    assert!(answer.contains(r#""percentComplete":0.0"#), "the patch's answer shows 0: {answer}");
    let path = format!("/projects/zero/operationstatuses/{id}?api-version=2025-02-01");
    let read = app.get_bearer(&path, &app.admin_key).await.text().await.unwrap();
    assert!(read.contains(r#""percentComplete":0.0"#), "{read}");
    // A later progress of 0 is no change and no decrease.
    let again = app.patch_ok(&id, json!({"percentComplete": 0})).await;
    assert_eq!(again["percentComplete"], 0.0);
}

#[tokio::test]
async fn the_list_filters_by_creation_time_and_its_next_link_keeps_the_window() {
    let app = TestApp::spawn().await;
    let mut created = Vec::new();
    for _ in 0..4 {
        created.push(app.create_ok("projects/window", "deleteDevBox").await);
        app.policy.clock.advance(std::time::Duration::from_secs(60));
    }
    let at = |op: &Value| op["createdAt"].as_str().unwrap().to_owned();
    let (from, before) = (at(&created[1]), at(&created[3]));
    let query = format!("scope=projects/window&createdFrom={from}&createdBefore={before}&maxPageSize=1");
    let first: Value = app.get_bearer(&format!("/v1/operations?{query}"), &app.admin_key).await.json().await.unwrap();
    assert_eq!(first["value"][0]["id"], created[2]["id"], "newest in the window first");
    let next = first["nextLink"].as_str().expect("a second page");
    assert!(next.contains("createdFrom=") && next.contains("createdBefore="), "{next}");
    let second: Value = app.get_bearer(next, &app.admin_key).await.json().await.unwrap();
    assert_eq!(second["value"][0]["id"], created[1]["id"]);
    let third = match second["nextLink"].as_str() {
        Some(next) => app.get_bearer(next, &app.admin_key).await.json::<Value>().await.unwrap()["value"].clone(),
        None => json!([]),
    };
    assert_eq!(third, json!([]), "nothing outside the window");

    let bad = app.get_bearer("/v1/operations?createdFrom=yesterday", &app.admin_key).await;
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"]["target"], "createdFrom");
}
