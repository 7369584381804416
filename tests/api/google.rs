//! Google's google.longrunning.Operations over HTTP/JSON (SPEC §2.6): the
//! same operations by `{scope}/operations/{id}`, in proto3 JSON, with
//! Google's error envelope and codes.

use longrun::model::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, id_of, normalized, unknown_id};

/// `{method} {address}{path}` with a bearer key: status and JSON body.
async fn call(app: &TestApp, method: reqwest::Method, path: &str, key: &str) -> (StatusCode, Value) {
    let response = app.client.request(method, format!("{}{path}", app.address)).bearer_auth(key).send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

async fn get(app: &TestApp, path: &str) -> (StatusCode, Value) {
    call(app, reqwest::Method::GET, path, &app.admin_key.clone()).await
}

#[tokio::test]
async fn each_state_reads_as_a_google_operation_with_metadata_response_or_error() {
    let app = TestApp::spawn().await;
    let new = app.create_ok("projects/gproj", "resize").await;
    let id = id_of(&new);
    let (status, op) = get(&app, &format!("/v1/projects/gproj/operations/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(op["name"], format!("projects/gproj/operations/{id}"));
    assert_eq!(op["done"], false);
    assert_eq!(op["metadata"]["@type"], "type.googleapis.com/google.protobuf.Struct");
    assert_eq!(op["metadata"]["value"]["state"], "NotStarted");
    assert_eq!(op["metadata"]["value"]["kind"], "resize");
    assert!(op["metadata"]["value"]["createTime"].as_str().unwrap().ends_with('Z'));
    assert!(op.get("error").is_none() && op.get("response").is_none());
    let fields: Vec<&String> = op.as_object().unwrap().keys().collect();
    assert_eq!(fields, ["done", "metadata", "name"], "nothing the REST client would refuse");

    let cases = [
        (
            json!({"state": "Succeeded", "percentComplete": 100, "resourceLocation": "/images/7", "properties": {"size": 3}}),
            json!({"response": {"@type": "type.googleapis.com/google.protobuf.Struct",
                                "value": {"resourceLocation": "/images/7", "properties": {"size": 3}}}}),
        ),
        (
            json!({"state": "Failed", "error": {"code": "DeadlineExceeded", "message": "too slow"}}),
            json!({"error": {"code": 4, "message": "too slow", "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                             "reason": "DEADLINE_EXCEEDED", "domain": "longrun", "metadata": {}}]}}),
        ),
        (
            json!({"state": "Failed", "error": {"code": "DiskFull", "message": "no space"}}),
            json!({"error": {"code": 2, "message": "no space", "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                             "reason": "DISK_FULL", "domain": "longrun", "metadata": {}}]}}),
        ),
        (
            json!({"state": "Canceled"}),
            json!({"error": {"code": 1, "message": "The operation was canceled.", "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                             "reason": "CANCELLED", "domain": "longrun", "metadata": {}}]}}),
        ),
    ];
    for (patch, expected) in cases {
        let id = id_of(&app.create_ok("projects/gproj", "resize").await);
        assert_eq!(app.patch(&id, patch.clone()).await.status(), StatusCode::OK, "{patch}");
        let (_, op) = get(&app, &format!("/v1/projects/gproj/operations/{id}")).await;
        assert_eq!(op["done"], true, "{patch}");
        for (field, value) in expected.as_object().unwrap() {
            assert_eq!(&op[field], value, "{patch}");
        }
    }
    let id = id_of(&app.create_ok("projects/gproj", "resize").await);
    let partial = json!({"state": "CompleteWithErrors", "error": {"code": "SomeSkipped", "message": "2 of 9 skipped"}});
    app.patch(&id, partial).await;
    let (_, op) = get(&app, &format!("/v1/projects/gproj/operations/{id}")).await;
    assert!(op.get("error").is_none(), "a partial success is a success");
    assert_eq!(op["response"]["value"], json!({}));
    assert_eq!(op["metadata"]["value"]["partialError"], json!({"code": "SomeSkipped", "message": "2 of 9 skipped"}));
}

#[tokio::test]
async fn another_scopes_name_answers_exactly_as_a_missing_one() {
    let app = TestApp::spawn().await;
    let theirs = id_of(&app.create_ok("projects/theirs", "resize").await);
    let key = app.key("projects/mine", Role::Admin).await;
    let get_as = |path: String| app.client.get(format!("{}{path}", app.address)).bearer_auth(&key).send();
    let under_theirs = get_as(format!("/v1/projects/theirs/operations/{theirs}")).await.unwrap();
    let under_mine = get_as(format!("/v1/projects/mine/operations/{theirs}")).await.unwrap();
    let missing = unknown_id();
    let nowhere = get_as(format!("/v1/projects/mine/operations/{missing}")).await.unwrap();
    let under_theirs = normalized(under_theirs, &[&theirs]).await;
    assert!(under_theirs.starts_with("404"), "{under_theirs}");
    assert!(under_theirs.contains(r#""status":"NOT_FOUND""#), "{under_theirs}");
    assert_eq!(under_theirs, normalized(under_mine, &[&theirs]).await);
    assert_eq!(under_theirs, normalized(nowhere, &[&missing]).await);
    // Even the admin reads an operation only under its own scope's name.
    let (status, _) = get(&app, &format!("/v1/accounts/theirs/operations/{theirs}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn list_pages_newest_first_and_filters_by_done_state_and_kind() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for kind in ["a1x", "b2x", "a1x", "b2x", "a1x"] {
        ids.push(id_of(&app.create_ok("projects/glist", kind).await));
    }
    app.patch(&ids[0], json!({"state": "Succeeded"})).await;
    app.create_ok("projects/other", "a1x").await;
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let (status, page) = get(&app, &format!("/v1/projects/glist/operations?pageSize=2&pageToken={token}")).await;
        assert_eq!(status, StatusCode::OK);
        seen.extend(page["operations"].as_array().unwrap().iter().map(|op| op["name"].as_str().unwrap().to_owned()));
        match page["nextPageToken"].as_str() {
            Some(next) => token = next.to_owned(),
            None => break,
        }
    }
    let expected: Vec<String> = ids.iter().rev().map(|id| format!("projects/glist/operations/{id}")).collect();
    assert_eq!(seen, expected, "every operation once, newest first");

    let names = |page: &Value| page["operations"].as_array().unwrap().len();
    let query = |filter: &str| format!("/v1/projects/glist/operations?filter={}", urlencode(filter));
    assert_eq!(names(&get(&app, &query("done = false")).await.1), 4);
    assert_eq!(names(&get(&app, &query("done = true")).await.1), 1);
    assert_eq!(names(&get(&app, &query(r#"kind = "a1x" AND done = false"#)).await.1), 2);
    assert_eq!(names(&get(&app, &query(r#"state = "NotStarted" AND kind = "b2x""#)).await.1), 2);
    for bad in ["owner = \"me\"", "done = maybe", "done"] {
        let (status, body) = get(&app, &query(bad)).await;
        assert_eq!(
            (status, body["error"]["status"].as_str()),
            (StatusCode::BAD_REQUEST, Some("INVALID_ARGUMENT")),
            "{bad}"
        );
    }
    for bad in ["pageSize=-1", "pageToken=nonsense"] {
        let (status, body) = get(&app, &format!("/v1/projects/glist/operations?{bad}")).await;
        assert_eq!(
            (status, body["error"]["status"].as_str()),
            (StatusCode::BAD_REQUEST, Some("INVALID_ARGUMENT")),
            "{bad}"
        );
    }
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn cancel_needs_the_produce_role_and_ends_the_operation_cancelled() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("projects/gcancel", "resize").await);
    let path = format!("/v1/projects/gcancel/operations/{id}:cancel");
    let reader = app.key("projects/gcancel", Role::Read).await;
    let (status, body) = call(&app, reqwest::Method::POST, &path, &reader).await;
    assert_eq!((status, body["error"]["status"].as_str()), (StatusCode::FORBIDDEN, Some("PERMISSION_DENIED")));
    let producer = app.key("projects/gcancel", Role::Produce).await;
    let response = app
        .client
        .post(format!("{}{path}", app.address))
        .bearer_auth(&producer)
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "an empty body with a JSON content type");
    assert_eq!(response.json::<Value>().await.unwrap(), json!({}));
    let (_, op) = get(&app, &format!("/v1/projects/gcancel/operations/{id}")).await;
    assert_eq!((op["done"].as_bool(), op["error"]["code"].as_i64()), (Some(true), Some(1)));

    let done = id_of(&app.create_ok("projects/gcancel", "resize").await);
    app.patch(&done, json!({"state": "Succeeded"})).await;
    let path = format!("/v1/projects/gcancel/operations/{done}:cancel");
    let (status, body) = call(&app, reqwest::Method::POST, &path, &producer).await;
    assert_eq!((status, body["error"]["status"].as_str()), (StatusCode::BAD_REQUEST, Some("FAILED_PRECONDITION")));
}

#[tokio::test]
async fn wait_returns_once_the_operation_is_done_or_at_its_timeout() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("projects/gwait", "resize").await);
    let wait = |timeout: &str| {
        let url = format!("{}/v1/projects/gwait/operations/{id}:wait?timeout={timeout}", app.address);
        app.client.post(url).bearer_auth(&app.admin_key).send()
    };
    let started = std::time::Instant::now();
    let op: Value = wait("0.2s").await.unwrap().json().await.unwrap();
    assert_eq!(op["done"], false);
    assert!(started.elapsed() >= std::time::Duration::from_millis(200));

    let waiting = tokio::spawn(wait("30s"));
    crate::helpers::until_a_long_poll_waits(&app.client, &app.address).await;
    app.patch(&id, json!({"state": "Running", "percentComplete": 10})).await;
    app.patch(&id, json!({"state": "Succeeded"})).await;
    let op: Value = waiting.await.unwrap().unwrap().json().await.unwrap();
    assert_eq!(op["done"], true, "a change that leaves it running does not end the wait");
    let response = wait("soon").await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn refusals_use_googles_envelope_and_codes() {
    let app = TestApp::spawn().await;
    let id = unknown_id();
    let response = app.client.get(format!("{}/v1/projects/gauth/operations/{id}", app.address)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(body["error"]["code"], 401);
    assert_eq!(body["error"]["details"][0]["@type"], "type.googleapis.com/google.rpc.ErrorInfo");
    assert_eq!(body["error"]["details"][0]["domain"], "longrun");

    let (status, body) = get(&app, "/v1/projects/gauth/operations/not-a-uuid").await;
    assert_eq!((status, body["error"]["status"].as_str()), (StatusCode::BAD_REQUEST, Some("INVALID_ARGUMENT")));
    let (status, body) = get(&app, "/v1/projects/x/operations").await;
    assert_eq!(
        (status, body["error"]["status"].as_str()),
        (StatusCode::BAD_REQUEST, Some("INVALID_ARGUMENT")),
        "a bad project name"
    );
    let (status, body) = get(&app, "/v1/projects/gauth/nothing").await;
    assert_eq!((status, body["error"]["status"].as_str()), (StatusCode::NOT_FOUND, Some("NOT_FOUND")), "{body}");
}

#[tokio::test]
async fn delete_forgets_a_finished_operation_and_refuses_a_running_one() {
    let app = TestApp::spawn().await;
    let running = id_of(&app.create_ok("projects/gdelete", "resize").await);
    let finished = id_of(&app.create_ok("projects/gdelete", "resize").await);
    app.patch(&finished, json!({"state": "Succeeded"})).await;
    let producer = app.key("projects/gdelete", Role::Produce).await;
    let reader = app.key("projects/gdelete", Role::Read).await;
    let delete = |id: &str, key: &str| {
        let path = format!("/v1/projects/gdelete/operations/{id}");
        let key = key.to_owned();
        let app = &app;
        async move { call(app, reqwest::Method::DELETE, &path, &key).await }
    };
    let (status, body) = delete(&finished, &reader).await;
    assert_eq!((status, body["error"]["status"].as_str()), (StatusCode::FORBIDDEN, Some("PERMISSION_DENIED")));
    let (status, body) = delete(&running, &producer).await;
    assert_eq!((status, body["error"]["status"].as_str()), (StatusCode::BAD_REQUEST, Some("FAILED_PRECONDITION")));
    let still = get(&app, &format!("/v1/projects/gdelete/operations/{running}")).await;
    assert_eq!(still.1["done"], false, "deleting never cancels");
    let (status, body) = delete(&finished, &producer).await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    let (status, body) = get(&app, &format!("/v1/projects/gdelete/operations/{finished}")).await;
    assert_eq!((status, body["error"]["status"].as_str()), (StatusCode::NOT_FOUND, Some("NOT_FOUND")));
    let listed = get(&app, "/v1/projects/gdelete/operations").await.1;
    assert_eq!(listed["operations"].as_array().unwrap().len(), 1, "only the running one is listed");
    // Its owner's native API says what happened to it, as after retention.
    let native = app.get_bearer(&format!("/v1/operations/{finished}"), &producer).await;
    assert_eq!(native.json::<Value>().await.unwrap()["error"]["code"], "OperationExpired");
}
