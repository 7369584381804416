//! Idempotent creation with OASIS Repeatable Requests (SPEC §5): every case
//! of the header contract, and the record surviving a restart.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestApp;

fn http_date(at: SystemTime) -> String {
    httpdate::fmt_http_date(at)
}

async fn send(app: &TestApp, request_id: Option<&str>, first_sent: Option<String>, body: Value) -> reqwest::Response {
    let mut request = app.client.post(format!("{}/v1/operations", app.address)).bearer_auth(&app.admin_key).json(&body);
    if let Some(id) = request_id {
        request = request.header("Repeatability-Request-ID", id);
    }
    if let Some(sent) = first_sent {
        request = request.header("Repeatability-First-Sent", sent);
    }
    request.send().await.unwrap()
}

/// Records, as a first attempt would, that the admin key's request
/// `request_id` with `body()` began now and has not finished.
async fn first_attempt_begun(app: &TestApp, request_id: &str) {
    let now = app.policy.clock.now();
    let hash = longrun::service::auth::keys::hash_secret(&app.admin_key);
    let key_id = app.store.find_key_by_hash(&hash).await.unwrap().unwrap().id;
    let key = format!("{key_id}:{request_id}");
    let begun =
        app.store.begin_repeatable(&key, &fingerprint_of_body(), now, now, now.plus(Duration::from_secs(600))).await;
    assert_eq!(begun.unwrap(), longrun::store::RepeatBegin::Started);
}

/// The repeatability fingerprint of `body()` sent with no chosen id.
fn fingerprint_of_body() -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(format!("{}\0", body()).as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn body() -> Value {
    json!({"scope": "projects/repeat", "kind": "deleteDevBox"})
}

#[tokio::test]
async fn a_repeated_request_replays_the_first_response() {
    let app = TestApp::spawn().await;
    let id = uuid::Uuid::new_v4().to_string();
    let now = http_date(SystemTime::now());
    let first = send(&app, Some(&id), Some(now.clone()), body()).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert_eq!(first.headers()["repeatability-result"], "accepted");
    let first_location = first.headers()["operation-location"].clone();
    let first_body: Value = first.json().await.unwrap();

    // Same id, same body (other key order): the same operation, not a second one.
    let again =
        send(&app, Some(&id), Some(now.clone()), json!({"kind": "deleteDevBox", "scope": "projects/repeat"})).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["repeatability-result"], "accepted");
    assert_eq!(again.headers()["operation-location"], first_location);
    assert_eq!(again.json::<Value>().await.unwrap(), first_body);
    let listed: Value =
        app.get_bearer("/v1/operations?scope=projects/repeat", &app.admin_key).await.json().await.unwrap();
    assert_eq!(listed["value"].as_array().unwrap().len(), 1, "exactly one operation was created");

    // Same id, different body: 400, rejected.
    let different = send(&app, Some(&id), Some(now), json!({"scope": "projects/repeat", "kind": "startDevBox"})).await;
    assert_eq!(different.status(), StatusCode::BAD_REQUEST);
    assert_eq!(different.headers()["repeatability-result"], "rejected");
    assert_eq!(different.headers()["x-ms-error-code"], "RepeatableRequestMismatch");
}

#[tokio::test]
async fn malformed_headers_are_400_and_a_stale_first_sent_is_412() {
    let app = TestApp::spawn().await;
    let now = http_date(SystemTime::now());
    let cases = [
        (Some("id-only"), None),
        (None, Some(now.clone())),
        (Some("has space"), Some(now.clone())),
        (Some("ok-id"), Some("yesterday".to_owned())),
    ];
    for (id, sent) in cases {
        let response = send(&app, id, sent.clone(), body()).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{id:?} {sent:?}");
        assert_eq!(response.headers()["repeatability-result"], "rejected");
        assert_eq!(response.headers()["x-ms-error-code"], "InvalidRepeatabilityHeader");
    }
    let long_ago = http_date(SystemTime::now() - Duration::from_secs(3600));
    let stale = send(&app, Some("stale-id"), Some(long_ago), body()).await;
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(stale.headers()["repeatability-result"], "rejected");
    let future = http_date(SystemTime::now() + Duration::from_secs(3600));
    assert_eq!(send(&app, Some("future-id"), Some(future), body()).await.status(), StatusCode::PRECONDITION_FAILED);
}

#[tokio::test]
async fn a_repeat_while_the_first_attempt_is_in_flight_is_409() {
    let app = TestApp::spawn().await;
    // A first attempt of this very request that began and has not finished.
    first_attempt_begun(&app, "busy").await;
    let sent = http_date(SystemTime::now());
    let in_flight = send(&app, Some("busy"), Some(sent.clone()), body()).await;
    assert_eq!(in_flight.status(), StatusCode::CONFLICT);
    assert_eq!(in_flight.headers()["repeatability-result"], "rejected");
    assert_eq!(in_flight.headers()["x-ms-error-code"], "RepeatableRequestInProgress");
    assert_eq!(in_flight.headers()["retry-after"], "1", "the client is told when to try again");
    let different = send(&app, Some("busy"), Some(sent), json!({"scope": "projects/repeat", "kind": "other"})).await;
    assert_eq!(different.status(), StatusCode::BAD_REQUEST, "a different request is a mismatch even in flight");
}

#[tokio::test]
async fn a_first_attempt_silent_for_fifteen_seconds_is_taken_over() {
    let app = TestApp::spawn().await;
    // A first attempt whose node died after recording that it began.
    first_attempt_begun(&app, "orphan").await;
    let sent = http_date(SystemTime::now());
    app.policy.clock.advance(Duration::from_secs(14));
    let early = send(&app, Some("orphan"), Some(sent.clone()), body()).await;
    assert_eq!(early.status(), StatusCode::CONFLICT, "14 s on, the first attempt may still be running");
    app.policy.clock.advance(Duration::from_secs(2));
    let taken_over = send(&app, Some("orphan"), Some(sent), body()).await;
    assert_eq!(taken_over.status(), StatusCode::CREATED);
    assert_eq!(taken_over.headers()["repeatability-result"], "accepted");
}

#[tokio::test]
async fn the_record_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first_app = TestApp::spawn_in(dir.path()).await;
    let key = first_app.admin_key.clone();
    let sent = http_date(SystemTime::now());
    let first = send(&first_app, Some("durable"), Some(sent.clone()), body()).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first_body: Value = first.json().await.unwrap();
    first_app.stop().await;

    let mut second = TestApp::spawn_in(dir.path()).await;
    second.admin_key = key;
    let again = send(&second, Some("durable"), Some(sent), body()).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.json::<Value>().await.unwrap(), first_body);
}

#[tokio::test]
async fn a_repeat_that_finds_no_record_still_finds_the_operation() {
    let app = TestApp::spawn().await;
    let first = send(&app, Some("lost-record"), Some(http_date(SystemTime::now())), body()).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let id = first.json::<Value>().await.unwrap()["id"].clone();
    // The record is gone (here: its window passed and the purge ran), as
    // if the first attempt's node died between committing and recording.
    let later = Duration::from_secs(3600);
    app.policy.clock.advance(later);
    longrun::worker::runner::purge_once(app.store.as_ref(), &app.policy).await.unwrap();
    let again = send(&app, Some("lost-record"), Some(http_date(SystemTime::now() + later)), body()).await;
    assert_eq!(again.status(), StatusCode::OK, "the existing operation, not a second one");
    assert_eq!(again.json::<Value>().await.unwrap()["id"], id);
}
