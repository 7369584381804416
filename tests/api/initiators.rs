//! The emulated initiating calls (SPEC §2.5): each starts an operation in
//! the caller's scope and answers as the real service does; in demo mode the
//! operation then advances by itself.

use std::time::Duration;

use longrun::model::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, tenant};

#[tokio::test]
async fn face_take_and_apply_answer_202_with_a_relative_operation_location() {
    let app = TestApp::spawn().await;
    let key = app.key("accounts/contoso", Role::Produce).await;
    let take = app
        .client
        .post(format!("{}/face/v1.0/snapshots", app.address))
        .header("Ocp-Apim-Subscription-Key", &key)
        .json(&json!({"type": "PersonGroup", "objectId": "group-1", "applyScope": [uuid::Uuid::new_v4()]}))
        .send()
        .await
        .unwrap();
    assert_eq!(take.status(), StatusCode::ACCEPTED);
    let location = take.headers()["operation-location"].to_str().unwrap().to_owned();
    assert!(take.bytes().await.unwrap().is_empty(), "Face's 202 has no body");
    let id = location.strip_prefix("/operations/").expect("relative /operations/{id}").to_owned();

    let status = |id: String| {
        let request = app
            .client
            .get(format!("{}/face/v1.0/operations/{id}", app.address))
            .header("Ocp-Apim-Subscription-Key", &key);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    assert_eq!(status(id.clone()).await["status"], "notStarted");
    app.run_scripts_after(2).await;
    assert_eq!(status(id.clone()).await["status"], "running");
    app.run_scripts_after(4).await;
    let done = status(id.clone()).await;
    assert_eq!(done["status"], "succeeded");
    assert!(done["resourceLocation"].as_str().unwrap().starts_with("/snapshots/"));

    let snapshot = uuid::Uuid::new_v4();
    let apply = app
        .client
        .post(format!("{}/face/v1.0-preview/snapshots/{snapshot}/apply", app.address))
        .header("Ocp-Apim-Subscription-Key", &key)
        .json(&json!({"objectId": "group-2", "mode": "CreateNew"}))
        .send()
        .await
        .unwrap();
    assert_eq!(apply.status(), StatusCode::ACCEPTED);
    assert!(apply.headers()["operation-location"].to_str().unwrap().starts_with("/operations/"));
}

#[tokio::test]
async fn face_initiators_refuse_bad_bodies_and_read_only_keys() {
    let app = TestApp::spawn().await;
    let reader = app.key("accounts/contoso", Role::Read).await;
    let producer = app.key("accounts/contoso", Role::Produce).await;
    let url = format!("{}/face/v1.0/snapshots", app.address);
    let good = json!({"type": "PersonGroup", "objectId": "group-1", "applyScope": [uuid::Uuid::new_v4()]});
    let read_only =
        app.client.post(&url).header("Ocp-Apim-Subscription-Key", &reader).json(&good).send().await.unwrap();
    assert_eq!(read_only.status(), StatusCode::FORBIDDEN);
    for bad in [
        json!({"type": "Nothing", "objectId": "g", "applyScope": [uuid::Uuid::new_v4()]}),
        json!({"type": "PersonGroup", "objectId": "UPPER", "applyScope": [uuid::Uuid::new_v4()]}),
        json!({"type": "PersonGroup", "objectId": "g", "applyScope": []}),
    ] {
        let response =
            app.client.post(&url).header("Ocp-Apim-Subscription-Key", &producer).json(&bad).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(response.json::<Value>().await.unwrap()["error"]["code"], "BadArgument");
    }
    let wildcard =
        app.client.post(&url).header("Ocp-Apim-Subscription-Key", &app.admin_key).json(&good).send().await.unwrap();
    assert_eq!(wildcard.status(), StatusCode::FORBIDDEN, "a Face operation needs an account");
}

#[tokio::test]
async fn devcenter_delete_answers_202_with_an_operation_status_body() {
    let app = TestApp::spawn().await;
    let key = app.key("projects/myProject", Role::Produce).await;
    let url = format!("{}/projects/myProject/users/me/devboxes/box-1?api-version=2025-02-01", app.address);
    let response = app.client.delete(&url).bearer_auth(&key).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let operation_location = response.headers()["operation-location"].to_str().unwrap().to_owned();
    assert!(operation_location.starts_with("/projects/myProject/operationstatuses/"));
    assert!(operation_location.ends_with("?api-version=2025-02-01"));
    assert_eq!(response.headers()["location"].to_str().unwrap(), operation_location);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "NotStarted");
    assert_eq!(body["resourceId"], "/projects/myProject/users/me/devboxes/box-1");

    app.run_scripts_after(10).await;
    app.run_scripts_after(10).await;
    let polled: Value = app.get_bearer(&operation_location, &key).await.json().await.unwrap();
    assert_eq!(polled["status"], "Succeeded");
    assert_eq!(polled["percentComplete"], 100.0);
}

#[tokio::test]
async fn devcenter_actions_answer_202_without_location() {
    let app = TestApp::spawn().await;
    let key = app.key("projects/myProject", Role::Produce).await;
    for action in ["start", "stop", "restart"] {
        let url = format!("{}/projects/myProject/users/me/devboxes/box-1:{action}?api-version=2025-02-01", app.address);
        let response = app.client.post(&url).bearer_auth(&key).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED, "{action}");
        assert!(response.headers().contains_key("operation-location"));
        assert!(!response.headers().contains_key("location"), "azure-core would GET it after success");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "NotStarted");
    }
    let unknown = format!("{}/projects/myProject/users/me/devboxes/box-1:explode?api-version=2025-02-01", app.address);
    assert_eq!(
        app.client.post(&unknown).bearer_auth(&key).send().await.unwrap().status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
    let no_version = format!("{}/projects/myProject/users/me/devboxes/box-1:start", app.address);
    let response = app.client.post(&no_version).bearer_auth(&key).send().await.unwrap();
    assert_eq!(response.headers()["x-ms-error-code"], "MissingApiVersionParameter");
    let bad_name = format!("{}/projects/myProject/users/me/devboxes/x:start?api-version=2025-02-01", app.address);
    assert_eq!(app.client.post(&bad_name).bearer_auth(&key).send().await.unwrap().status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn sphere_image_upload_answers_200_with_the_operation() {
    let app = TestApp::spawn().await;
    let tenant = tenant();
    let key = app.key(&format!("tenants/{tenant}"), Role::Produce).await;
    let url = format!("{}/v2/tenants/{tenant}/images", app.address);
    let response = app
        .client
        .post(&url)
        .bearer_auth(&key)
        .header("Content-Type", "application/octet-stream")
        .body(vec![7u8; 100_000])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!((body["OperationType"].clone(), body["State"].clone()), (json!(7), json!(0)));
    let id = body["OperationId"].as_str().unwrap().to_owned();
    app.run_scripts_after(10).await;
    app.run_scripts_after(10).await;
    let done: Value =
        app.get_bearer(&format!("/v2/tenants/{tenant}/operations/{id}"), &key).await.json().await.unwrap();
    assert_eq!(done["State"], 2);
    assert!(done["ResourceLocation"].as_str().unwrap().starts_with(&format!("/v2/tenants/{tenant}/images/")));

    let empty = app.client.post(&url).bearer_auth(&key).send().await.unwrap();
    assert_eq!(empty.status(), StatusCode::BAD_REQUEST);
    let other_tenant = app
        .client
        .post(format!("{}/v2/tenants/{}/images", app.address, crate::helpers::tenant()))
        .bearer_auth(&key)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(other_tenant.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn demo_operations_advance_by_themselves_in_a_running_server() {
    let app = TestApp::spawn().await;
    let key = app.key("projects/myProject", Role::Produce).await;
    let url = format!("{}/projects/myProject/users/me/devboxes/box-9:restart?api-version=2025-02-01", app.address);
    let response = app.client.post(&url).bearer_auth(&key).send().await.unwrap();
    let location = response.headers()["operation-location"].to_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let body: Value = app.get_bearer(&location, &key).await.json().await.unwrap();
        if body["status"] == "Succeeded" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {} after 15 s", body["status"]);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn demo_mode_seeds_one_scripted_operation_per_dialect_readable_with_its_key() {
    let app = TestApp::spawn().await;
    let seeded = longrun::cli::demo::seed(app.store.as_ref(), &app.policy, &app.address, &app.data_dir).await.unwrap();
    assert_eq!(seeded.urls.len(), 3);
    for (dialect, url) in &seeded.urls {
        let mut request = app.client.get(url);
        request = if url.contains("/face/") {
            request.header("Ocp-Apim-Subscription-Key", &seeded.key)
        } else {
            request.bearer_auth(&seeded.key)
        };
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{dialect}: {url}");
    }
    app.run_scripts_after(25).await;
    app.run_scripts_after(25).await;
    app.run_scripts_after(25).await;
    let (_, devcenter) = &seeded.urls[1];
    let body: Value = app.client.get(devcenter).bearer_auth(&seeded.key).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["status"], "Succeeded");
}

#[tokio::test]
async fn demo_mode_keeps_one_read_key_per_data_dir_while_it_works() {
    let app = TestApp::spawn().await;
    let seed = || longrun::cli::demo::seed(app.store.as_ref(), &app.policy, &app.address, &app.data_dir);
    let first = seed().await.unwrap().key;
    assert_eq!(seed().await.unwrap().key, first, "a second start reuses the key");
    let demo_keys = || async {
        let keys = app.store.list_keys().await.unwrap();
        keys.into_iter().filter(|k| k.name.as_deref() == Some("serve --demo")).count()
    };
    assert_eq!(demo_keys().await, 1);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(app.data_dir.join("demo-key")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "the secret is the owner's alone");

    // Revoked, it is replaced, once.
    let hash = longrun::service::auth::keys::hash_secret(&first);
    let id = app.store.find_key_by_hash(&hash).await.unwrap().unwrap().id;
    app.store.revoke_key(&id, app.policy.clock.now()).await.unwrap();
    let replaced = seed().await.unwrap().key;
    assert_ne!(replaced, first);
    assert_eq!(seed().await.unwrap().key, replaced);
}
