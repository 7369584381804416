//! Long-poll: `:wait` on the native API and `Prefer: wait=N` in the
//! dialects answer when the operation changes, on one node or across two.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ServeProcess, TestApp, cli_key, create_on, id_of, postgres_url, until_a_long_poll_waits};

/// Well below every wait the tests ask for: proves the answer came from the
/// change, not from the timeout.
const WELL_BEFORE_TIMEOUT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn wait_answers_when_the_operation_changes() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("projects/waiting", "deleteDevBox").await);
    let url = format!("{}/v1/operations/{id}:wait?timeout=60s", app.address);
    let waiter = app.client.get(&url).bearer_auth(&app.admin_key).send();
    let patch = async {
        until_a_long_poll_waits(&app.client, &app.address).await;
        app.patch_ok(&id, json!({"state": "Running", "percentComplete": 10})).await
    };
    let started = Instant::now();
    let (response, _) = tokio::join!(waiter, patch);
    let body: Value = response.unwrap().json().await.unwrap();
    assert_eq!((body["version"].clone(), body["state"].clone()), (json!(2), json!("Running")));
    assert!(started.elapsed() < WELL_BEFORE_TIMEOUT);
}

#[tokio::test]
async fn wait_answers_at_once_when_there_is_news_and_at_the_timeout_otherwise() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("projects/waiting", "deleteDevBox").await);
    app.patch_ok(&id, json!({"state": "Running"})).await;
    let url = format!("{}/v1/operations/{id}:wait?timeout=60s", app.address);
    // The client has an older version: answer at once.
    let started = Instant::now();
    let stale = app.client.get(&url).bearer_auth(&app.admin_key).header("If-None-Match", "\"1\"").send().await.unwrap();
    assert_eq!(stale.json::<Value>().await.unwrap()["version"], 2);
    // Terminal: nothing more will happen; answer at once.
    app.patch_ok(&id, json!({"state": "Succeeded"})).await;
    let done = app.client.get(&url).bearer_auth(&app.admin_key).send().await.unwrap();
    assert_eq!(done.json::<Value>().await.unwrap()["state"], "Succeeded");
    assert!(started.elapsed() < WELL_BEFORE_TIMEOUT);
    // Nothing happens: the current state at the timeout.
    let quiet = id_of(&app.create_ok("projects/waiting", "deleteDevBox").await);
    let url = format!("{}/v1/operations/{quiet}:wait?timeout=1s", app.address);
    let response = app.client.get(&url).bearer_auth(&app.admin_key).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["version"], 1);
    let too_long = format!("{}/v1/operations/{quiet}:wait?timeout=10m", app.address);
    assert_eq!(
        app.client.get(&too_long).bearer_auth(&app.admin_key).send().await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn dialects_wait_when_asked_with_prefer_wait() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("projects/waiting", "deleteDevBox").await);
    let url = format!("{}/projects/waiting/operationstatuses/{id}?api-version=2025-02-01", app.address);
    // A conditional long-poll that sees the change: 200 with the new state.
    let waiter = app
        .client
        .get(&url)
        .bearer_auth(&app.admin_key)
        .header("If-None-Match", "\"1\"")
        .header("Prefer", "wait=60")
        .send();
    let patch = async {
        until_a_long_poll_waits(&app.client, &app.address).await;
        app.patch_ok(&id, json!({"state": "Running", "percentComplete": 50})).await
    };
    let started = Instant::now();
    let (response, _) = tokio::join!(waiter, patch);
    let response = response.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["percentComplete"], 50.0);
    assert!(started.elapsed() < WELL_BEFORE_TIMEOUT);
    // Nothing changes within the wait: the 304 of a conditional GET.
    let quiet = app
        .client
        .get(&url)
        .bearer_auth(&app.admin_key)
        .header("If-None-Match", "\"2\"")
        .header("Prefer", "wait=1")
        .send()
        .await
        .unwrap();
    assert_eq!(quiet.status(), StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn a_waiter_on_one_node_hears_a_change_made_through_another() {
    let Some(base) = postgres_url("a_waiter_on_one_node_hears_a_change_made_through_another") else { return };
    let url = longrun::store::postgres::scratch_schema(&base).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let args = ["--store", url.as_str()];
    let (a, b) = (ServeProcess::start(dir.path(), &args), ServeProcess::start(dir.path(), &args));
    let key = cli_key(dir.path(), &args, "*", "admin");
    let client = reqwest::Client::new();
    let created = create_on(&client, &a.address, &key, "projects/waiting", "deleteDevBox").await;
    let id = id_of(&created);
    // Give node B's listener time to connect before the change is made.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let waiter = client.get(format!("{}/v1/operations/{id}:wait?timeout=60s", b.address)).bearer_auth(&key).send();
    let patch = async {
        until_a_long_poll_waits(&client, &b.address).await;
        client
            .patch(format!("{}/v1/operations/{id}", a.address))
            .bearer_auth(&key)
            .json(&json!({"state": "Running"}))
            .send()
            .await
            .unwrap()
    };
    let started = Instant::now();
    let (response, _) = tokio::join!(waiter, patch);
    assert_eq!(response.unwrap().json::<Value>().await.unwrap()["state"], "Running");
    assert!(started.elapsed() < WELL_BEFORE_TIMEOUT, "heard through NOTIFY, not at the timeout");
    drop((a, b));
    longrun::store::postgres::drop_scratch_schema(&url).await.unwrap();
}

/// One long-poll request's status, and how long it took.
async fn timed(request: reqwest::RequestBuilder) -> (StatusCode, Duration) {
    let started = Instant::now();
    let response = request.send().await.unwrap();
    (response.status(), started.elapsed())
}

#[tokio::test]
async fn a_wait_reads_an_if_none_match_list_like_a_conditional_get() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("projects/waiting", "deleteDevBox").await);
    app.patch_ok(&id, json!({"state": "Running"})).await; // now "2"
    let native = format!("{}/v1/operations/{id}:wait?timeout=2s", app.address);
    let devcenter = format!("{}/projects/waiting/operationstatuses/{id}?api-version=2025-02-01", app.address);
    let wait = |url: &str, etags: &str, prefer: Option<&str>| {
        let request = app.client.get(url).bearer_auth(&app.admin_key).header("If-None-Match", etags.to_owned());
        match prefer {
            Some(prefer) => request.header("Prefer", prefer.to_owned()),
            None => request,
        }
    };
    // A list of ETags the client had, none current: news, answered at once.
    // So is a value that is no ETag at all (`null`, unquoted): whatever the
    // client holds, it is not the current representation.
    for etags in ["\"1\", \"7\"", "W/\"1\", W/\"9\"", "null", "2"] {
        let (status, took) = timed(wait(&native, etags, None)).await;
        assert_eq!(status, StatusCode::OK, "{etags}");
        assert!(took < Duration::from_millis(1500), "{etags}: answered at once, not after {took:?}");
        let (status, took) = timed(wait(&devcenter, etags, Some("wait=2"))).await;
        assert_eq!(status, StatusCode::OK, "{etags}");
        assert!(took < Duration::from_millis(1500), "{etags}: answered at once, not after {took:?}");
    }
    // A list holding the current ETag, or `*` (any current representation):
    // nothing new yet, so it waits; the dialect answers 304 at the end.
    for etags in ["\"1\", \"2\"", "W/\"2\"", "*"] {
        let (status, took) = timed(wait(&native, etags, None)).await;
        assert_eq!(status, StatusCode::OK, "{etags}");
        assert!(took >= Duration::from_millis(1500), "{etags}: waited, not {took:?}");
        let (status, took) = timed(wait(&devcenter, etags, Some("wait=2"))).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED, "{etags}");
        assert!(took >= Duration::from_millis(1500), "{etags}: waited, not {took:?}");
    }
}

#[tokio::test]
async fn a_wait_that_lists_the_current_etag_answers_when_the_operation_changes() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("projects/waiting", "deleteDevBox").await);
    let url = format!("{}/v1/operations/{id}:wait?timeout=60s", app.address);
    let waiter = app.client.get(&url).bearer_auth(&app.admin_key).header("If-None-Match", "\"0\", \"1\"").send();
    let patch = async {
        until_a_long_poll_waits(&app.client, &app.address).await;
        app.patch_ok(&id, json!({"state": "Running"})).await
    };
    let started = Instant::now();
    let (response, _) = tokio::join!(waiter, patch);
    assert_eq!(response.unwrap().json::<Value>().await.unwrap()["version"], 2);
    assert!(started.elapsed() < WELL_BEFORE_TIMEOUT);
}

#[tokio::test]
async fn prefer_wait_is_a_preference_not_a_parameter_of_another() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("projects/waiting", "deleteDevBox").await);
    let url = format!("{}/projects/waiting/operationstatuses/{id}?api-version=2025-02-01", app.address);
    let get = |prefer: &str| {
        app.client
            .get(&url)
            .bearer_auth(&app.admin_key)
            .header("If-None-Match", "\"1\"")
            .header("Prefer", prefer.to_owned())
    };
    // `wait` as a parameter of another preference asks for no wait.
    let (status, took) = timed(get("respond-async; wait=3")).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(took < Duration::from_millis(1500), "no wait asked for, yet it took {took:?}");
    // Spaces around `=` and a quoted value are the same preference (RFC 7240).
    for prefer in ["wait = 2", "wait=\"2\"", "respond-async, Wait=2; foo=bar"] {
        let (status, took) = timed(get(prefer)).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED, "{prefer}");
        assert!(took >= Duration::from_millis(1500), "{prefer}: waited, not {took:?}");
    }
}
