//! Webhooks: signed deliveries from the durable outbox, retried with
//! backoff until the receiver acknowledges, surviving a restart.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};

use crate::helpers::{TestApp, id_of};

/// A loopback receiver that fails its first `failures` requests.
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    failures: Arc<AtomicUsize>,
}

impl Receiver {
    async fn start(failures: usize) -> (Receiver, String) {
        let receiver = Receiver { failures: Arc::new(AtomicUsize::new(failures)), ..Receiver::default() };
        let app = Router::new().route("/hook", post(receive)).with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    fn requests(&self) -> Vec<(HeaderMap, Bytes)> {
        self.seen.lock().unwrap().clone()
    }
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    receiver.seen.lock().unwrap().push((headers, body));
    let failing = receiver.failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
    if failing { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::NO_CONTENT }
}

async fn register(app: &TestApp, url: &str, events: &str) -> Value {
    let response = app
        .client
        .post(format!("{}/v1/webhooks", app.address))
        .bearer_auth(&app.admin_key)
        .json(&json!({"scope": "projects/hooked", "url": url, "events": events}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

/// Waits (moving the server's clock past each backoff) until `done`.
async fn until(app: &TestApp, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        app.policy.clock.advance(Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

#[tokio::test]
async fn terminal_changes_are_delivered_signed_and_retried_until_acknowledged() {
    let app = TestApp::spawn().await;
    let (receiver, url) = Receiver::start(3).await;
    let hook = register(&app, &url, "terminal").await;
    let secret = hook["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));

    let id = id_of(&app.create_ok("projects/hooked", "deleteDevBox").await);
    app.patch_ok(&id, json!({"state": "Running"})).await;
    app.patch_ok(&id, json!({"state": "Succeeded", "resourceLocation": "/boxes/b1"})).await;
    app.create_ok("projects/elsewhere", "deleteDevBox").await;

    until(&app, "four attempts", || receiver.requests().len() >= 4).await;
    let requests = receiver.requests();
    let delivery_ids: Vec<_> = requests.iter().map(|(h, _)| h["x-longrun-delivery"].clone()).collect();
    assert!(delivery_ids.windows(2).all(|w| w[0] == w[1]), "one delivery, retried: {delivery_ids:?}");
    for (headers, body) in &requests {
        let signature = headers["x-longrun-signature"].to_str().unwrap();
        assert_eq!(signature, format!("sha256={}", longrun::worker::webhooks::sign(&secret, body)));
        let payload: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(payload["timestamp"], headers["x-longrun-timestamp"].to_str().unwrap());
        assert_eq!((payload["operation"]["id"].as_str(), payload["version"].as_i64()), (Some(id.as_str()), Some(3)));
        assert_eq!(payload["operation"]["state"], "Succeeded");
    }

    let hook_id = hook["id"].as_str().unwrap();
    let listed: Value =
        app.get_bearer(&format!("/v1/webhooks/{hook_id}/deliveries"), &app.admin_key).await.json().await.unwrap();
    let deliveries = listed["value"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "only the terminal change, only this scope: {listed}");
    assert_eq!((deliveries[0]["state"].as_str(), deliveries[0]["attempts"].as_u64()), (Some("delivered"), Some(4)));
}

#[tokio::test]
async fn all_events_webhooks_get_every_change() {
    let app = TestApp::spawn().await;
    let (receiver, url) = Receiver::start(0).await;
    register(&app, &url, "all").await;
    let id = id_of(&app.create_ok("projects/hooked", "deleteDevBox").await);
    app.patch_ok(&id, json!({"state": "Running"})).await;
    until(&app, "two deliveries", || receiver.requests().len() >= 2).await;
    let mut versions: Vec<i64> = receiver
        .requests()
        .iter()
        .map(|(_, body)| serde_json::from_slice::<Value>(body).unwrap()["version"].as_i64().unwrap())
        .collect();
    versions.sort();
    assert_eq!(versions, vec![1, 2]);
}

#[tokio::test]
async fn a_pending_delivery_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = TestApp::spawn_in(dir.path()).await;
    let (receiver, url) = Receiver::start(usize::MAX).await; // down for now
    register(&first, &url, "terminal").await;
    let id = id_of(&first.create_ok("projects/hooked", "deleteDevBox").await);
    first.patch_ok(&id, json!({"state": "Failed", "error": {"code": "E", "message": "m"}})).await;
    until(&first, "a failed attempt", || !receiver.requests().is_empty()).await;
    let key = first.admin_key.clone();
    first.stop().await;

    receiver.failures.store(0, Ordering::SeqCst); // the receiver is back
    let mut second = TestApp::spawn_in(dir.path()).await;
    second.admin_key = key;
    let before = receiver.requests().len();
    until(&second, "the delivery after the restart", || receiver.requests().len() > before).await;
    let (_, body) = receiver.requests().last().unwrap().clone();
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["operation"]["state"], "Failed");
}

#[tokio::test]
async fn registering_needs_admin_and_a_real_url() {
    let app = TestApp::spawn().await;
    let url = format!("{}/v1/webhooks", app.address);
    for body in [json!({"url": "ftp://x"}), json!({"url": "not a url"}), json!({"url": "http://x", "events": "some"})] {
        let response = app.client.post(&url).bearer_auth(&app.admin_key).json(&body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
    }
    let producer = app.key("projects/hooked", longrun::model::Role::Produce).await;
    let response = app
        .client
        .post(&url)
        .bearer_auth(&producer)
        .json(&json!({"url": "http://127.0.0.1:1/x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_outbox_survives_a_kill_between_the_change_and_the_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let (receiver, url) = Receiver::start(usize::MAX).await; // down at first
    let first = crate::helpers::ServeProcess::start(dir.path(), &[]);
    let key = crate::helpers::cli_key(dir.path(), &[], "*", "admin");
    let client = reqwest::Client::new();
    let hook = client
        .post(format!("{}/v1/webhooks", first.address))
        .bearer_auth(&key)
        .json(&json!({"url": url}))
        .send()
        .await
        .unwrap();
    assert_eq!(hook.status(), StatusCode::CREATED);
    let created = crate::helpers::create_on(&client, &first.address, &key, "projects/hooked", "deleteDevBox").await;
    let id = id_of(&created);
    let done =
        client.post(format!("{}/v1/operations/{id}:cancel", first.address)).bearer_auth(&key).send().await.unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(10);
    while receiver.requests().is_empty() {
        assert!(Instant::now() < deadline, "no first attempt");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut first = first;
    first.child.kill().unwrap(); // SIGKILL: no graceful anything
    first.child.wait().unwrap();

    receiver.failures.store(0, Ordering::SeqCst);
    let before = receiver.requests().len();
    let _second = crate::helpers::ServeProcess::start(dir.path(), &[]);
    // Usually the retry comes after a second's backoff; but if the kill
    // landed between the attempt and its recorded failure, the delivery is
    // still claimed, and is retried once the claim (2 × 10 s) lapses.
    let deadline = Instant::now() + Duration::from_secs(40);
    while receiver.requests().len() == before {
        assert!(Instant::now() < deadline, "the delivery did not resume after the restart");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, body) = receiver.requests().last().unwrap().clone();
    let payload: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (payload["operation"]["id"].as_str(), payload["operation"]["state"].as_str()),
        (Some(id.as_str()), Some("Canceled"))
    );
}

#[tokio::test]
async fn a_receiver_that_never_answers_holds_up_no_other() {
    use std::sync::atomic::AtomicBool;
    use tokio::io::AsyncReadExt;
    let app = TestApp::spawn().await;
    // Accepts one delivery and never answers; notes when longrun gives up on it.
    let stalled = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stalled_url = format!("http://{}/hook", stalled.local_addr().unwrap());
    let (accepted, accepted_rx) = tokio::sync::oneshot::channel();
    let given_up = Arc::new(AtomicBool::new(false));
    let abandoned = given_up.clone();
    tokio::spawn(async move {
        let (mut connection, _) = stalled.accept().await.unwrap();
        let _ = accepted.send(());
        let mut buffer = [0u8; 4096];
        while let Ok(n) = connection.read(&mut buffer).await {
            if n == 0 {
                break;
            }
        }
        abandoned.store(true, Ordering::SeqCst);
    });
    let response = app
        .client
        .post(format!("{}/v1/webhooks", app.address))
        .bearer_auth(&app.admin_key)
        .json(&json!({"scope": "projects/stalled", "url": stalled_url}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let (fast, fast_url) = Receiver::start(0).await;
    register(&app, &fast_url, "terminal").await;

    // The stalled delivery starts first…
    let first = id_of(&app.create_ok("projects/stalled", "deleteDevBox").await);
    app.patch_ok(&first, json!({"state": "Succeeded"})).await;
    tokio::time::timeout(Duration::from_secs(20), accepted_rx).await.expect("the stalled delivery starts").unwrap();
    // …then another operation ends: its receiver hears of it while the first is still held open.
    let second = id_of(&app.create_ok("projects/hooked", "deleteDevBox").await);
    app.patch_ok(&second, json!({"state": "Succeeded"})).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while fast.requests().is_empty() {
        assert!(Instant::now() < deadline, "the second delivery never came");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!given_up.load(Ordering::SeqCst), "the second delivery waited for the stalled one to be abandoned");
}

#[tokio::test]
async fn webhooks_are_listed_by_scope_and_deleted_by_an_admin_who_reaches_them() {
    let app = TestApp::spawn().await;
    let url = format!("{}/v1/webhooks", app.address);
    let mut ids = Vec::new();
    for scope in ["projects/hooka", "projects/hookb"] {
        let body = json!({"scope": scope, "url": "http://127.0.0.1:9/hook"});
        let made = app.client.post(&url).bearer_auth(&app.admin_key).json(&body).send().await.unwrap();
        ids.push(made.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned());
    }
    let list = |key: String, query: &'static str| {
        let request = app.client.get(format!("{url}{query}")).bearer_auth(key).send();
        async move {
            let response = request.await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let page: Value = response.json().await.unwrap();
            let hooks = page["value"].as_array().unwrap().clone();
            assert!(hooks.iter().all(|h| h.get("secret").is_none()), "secrets are shown only at creation");
            hooks.iter().map(|h| h["id"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
        }
    };
    assert_eq!(list(app.admin_key.clone(), "").await, ids);
    assert_eq!(list(app.admin_key.clone(), "?scope=projects/hooka").await, ids[..1]);

    let admin_a = app.key("projects/hooka", longrun::model::Role::Admin).await;
    assert_eq!(list(admin_a.clone(), "").await, ids[..1], "a scoped admin sees its scope's");
    let delete = |key: &str, id: &str| app.client.delete(format!("{url}/{id}")).bearer_auth(key.to_owned()).send();
    assert_eq!(delete(&admin_a, &ids[1]).await.unwrap().status(), StatusCode::NOT_FOUND, "another scope's is unknown");
    let reader = app.key("projects/hooka", longrun::model::Role::Read).await;
    assert_eq!(delete(&reader, &ids[0]).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(delete(&admin_a, &ids[0]).await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(list(app.admin_key.clone(), "").await, ids[1..]);
    assert_eq!(delete(&admin_a, &ids[0]).await.unwrap().status(), StatusCode::NOT_FOUND, "gone");
    let bad = app.client.get(format!("{url}?scope=nowhere")).bearer_auth(&app.admin_key).send().await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}
