//! Worker leases over HTTP: a queue drained by racing workers completes
//! every operation exactly once (one SQLite node; two PostgreSQL nodes), a
//! dead worker's operation goes to another after the TTL, and `WorkerLost`
//! ends it after `maxAttempts`. Lapses are driven by the server's clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ServeProcess, TestApp, cli_key, id_of, postgres_url, until_a_claim_waits};

const QUEUE: usize = 1000;

async fn claim(client: &reqwest::Client, node: &str, key: &str, ttl: &str) -> Option<Value> {
    let response = client
        .post(format!("{node}/v1/leases"))
        .bearer_auth(key)
        .json(&json!({"kinds": ["deleteDevBox"], "ttl": ttl}))
        .send()
        .await
        .unwrap();
    match response.status() {
        StatusCode::CREATED => Some(response.json().await.unwrap()),
        StatusCode::NO_CONTENT => None,
        other => panic!("claim: {other} {:?}", response.text().await),
    }
}

async fn lease_call(
    client: &reqwest::Client,
    node: &str,
    key: &str,
    lease: &str,
    action: &str,
    body: Value,
) -> reqwest::Response {
    client.post(format!("{node}/v1/leases/{lease}:{action}")).bearer_auth(key).json(&body).send().await.unwrap()
}

/// Two workers drain the queue through `nodes` (alternating); returns how
/// many operations each completed.
async fn drain(nodes: Vec<String>, key: String) -> HashMap<String, usize> {
    let done: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let mut workers = Vec::new();
    for (n, worker) in ["w1", "w2"].into_iter().enumerate() {
        let (nodes, key, done) = (nodes.clone(), key.clone(), done.clone());
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let node = &nodes[n % nodes.len()];
            while let Some(lease) = claim(&client, node, &key, "30s").await {
                let id = lease["leaseId"].as_str().unwrap();
                let result = json!({"state": "Succeeded", "properties": {"worker": worker}});
                let completed = lease_call(&client, node, &key, id, "complete", result).await;
                assert_eq!(completed.status(), StatusCode::OK, "{:?}", completed.text().await);
                *done.lock().unwrap().entry(worker.to_owned()).or_default() += 1;
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    Arc::try_unwrap(done).unwrap().into_inner().unwrap()
}

async fn fill_queue(client: &reqwest::Client, node: &str, key: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..QUEUE {
        let response = client
            .post(format!("{node}/v1/operations"))
            .bearer_auth(key)
            .json(&json!({"scope": "projects/queue", "kind": "deleteDevBox"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        ids.push(id_of(&response.json().await.unwrap()));
    }
    ids
}

async fn assert_each_completed_once(
    client: &reqwest::Client,
    node: &str,
    key: &str,
    ids: &[String],
    done: &HashMap<String, usize>,
) {
    assert_eq!(done.values().sum::<usize>(), QUEUE, "every claim completed once: {done:?}");
    for id in ids {
        let op: Value = client
            .get(format!("{node}/v1/operations/{id}"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(op["state"], "Succeeded", "{op}");
        assert_eq!(op["attempts"], 1, "claimed exactly once: {op}");
    }
    eprintln!("workers completed {done:?}");
}

#[tokio::test]
async fn two_workers_drain_a_queue_exactly_once_on_sqlite() {
    let app = TestApp::spawn().await;
    let ids = fill_queue(&app.client, &app.address, &app.admin_key).await;
    let done = drain(vec![app.address.clone()], app.admin_key.clone()).await;
    assert_each_completed_once(&app.client, &app.address, &app.admin_key, &ids, &done).await;
}

#[tokio::test]
async fn two_workers_on_two_nodes_drain_a_queue_exactly_once_on_postgres() {
    let Some(base) = postgres_url("two_workers_on_two_nodes_drain_a_queue_exactly_once_on_postgres") else { return };
    let url = longrun::store::postgres::scratch_schema(&base).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let args = ["--store", url.as_str()];
    let (a, b) = (ServeProcess::start(dir.path(), &args), ServeProcess::start(dir.path(), &args));
    let key = cli_key(dir.path(), &args, "*", "admin");
    let client = reqwest::Client::new();
    let ids = fill_queue(&client, &a.address, &key).await;
    let done = drain(vec![a.address.clone(), b.address.clone()], key.clone()).await;
    assert_each_completed_once(&client, &b.address, &key, &ids, &done).await;
    drop((a, b));
    longrun::store::postgres::drop_scratch_schema(&url).await.unwrap();
}

#[tokio::test]
async fn a_dead_workers_operation_is_rerun_by_another_then_fails_with_worker_lost() {
    let app = TestApp::spawn().await;
    let (node, key, client) = (app.address.clone(), app.admin_key.clone(), app.client.clone());
    let id = id_of(&app.create_ok("projects/queue", "deleteDevBox").await);
    let sweep = || async { longrun::service::leases::sweep(app.store.as_ref(), &app.policy).await.unwrap() };

    // Worker A claims, reports progress, then dies (no more heartbeats).
    let first = claim(&client, &node, &key, "10s").await.unwrap();
    let first_lease = first["leaseId"].as_str().unwrap().to_owned();
    assert_eq!(first["attempt"], 1);
    let beat =
        lease_call(&client, &node, &key, &first_lease, "heartbeat", json!({"percentComplete": 30, "ttl": "10s"})).await;
    assert_eq!(beat.status(), StatusCode::OK);
    assert!(claim(&client, &node, &key, "10s").await.is_none(), "held: nobody else gets it");
    app.policy.clock.advance(Duration::from_secs(11));
    sweep().await; // (the server's own background sweep may get there first)
    let requeued: Value = app.get_bearer(&format!("/v1/operations/{id}"), &key).await.json().await.unwrap();
    assert_eq!(requeued["state"], "NotStarted");
    assert!(requeued.get("percentComplete").is_none(), "a new attempt starts from its own progress");

    // Worker B picks it up; A's late calls are fenced off.
    let second = claim(&client, &node, &key, "10s").await.unwrap();
    let second_lease = second["leaseId"].as_str().unwrap().to_owned();
    assert_eq!(second["attempt"], 2);
    for (action, body) in [("heartbeat", json!({"percentComplete": 90})), ("complete", json!({"state": "Succeeded"}))] {
        let late = lease_call(&client, &node, &key, &first_lease, action, body).await;
        assert_eq!(late.status(), StatusCode::CONFLICT, "{action} from an expired attempt");
        assert_eq!(late.headers()["x-ms-error-code"], "LeaseLost");
    }
    let done = lease_call(&client, &node, &key, &second_lease, "complete", json!({"state": "Succeeded"})).await;
    assert_eq!(done.json::<Value>().await.unwrap()["operation"]["state"], "Succeeded");

    // An operation whose every worker dies fails after maxAttempts (3).
    let doomed = id_of(&app.create_ok("projects/queue", "deleteDevBox").await);
    for attempt in 1..=3 {
        let lease = claim(&client, &node, &key, "10s").await.unwrap();
        assert_eq!(lease["attempt"], attempt);
        app.policy.clock.advance(Duration::from_secs(11));
        sweep().await;
    }
    let failed: Value = app.get_bearer(&format!("/v1/operations/{doomed}"), &key).await.json().await.unwrap();
    assert_eq!(failed["state"], "Failed");
    assert_eq!(failed["error"]["code"], "WorkerLost");
    assert!(claim(&client, &node, &key, "10s").await.is_none());
}

#[tokio::test]
async fn a_canceled_operation_tells_its_worker_to_stop_and_refuses_its_result() {
    let app = TestApp::spawn().await;
    let (node, key, client) = (app.address.clone(), app.admin_key.clone(), app.client.clone());
    let id = id_of(&app.create_ok("projects/queue", "deleteDevBox").await);
    let lease = claim(&client, &node, &key, "30s").await.unwrap()["leaseId"].as_str().unwrap().to_owned();
    let cancel = client.post(format!("{node}/v1/operations/{id}:cancel")).bearer_auth(&key).send().await.unwrap();
    assert_eq!(cancel.status(), StatusCode::OK);
    let beat: Value = lease_call(&client, &node, &key, &lease, "heartbeat", json!({})).await.json().await.unwrap();
    assert_eq!(beat["canceled"], true);
    let result = lease_call(&client, &node, &key, &lease, "complete", json!({"state": "Succeeded"})).await;
    assert_eq!(result.status(), StatusCode::CONFLICT, "a cancel and a completion never both win");
    let op: Value = app.get_bearer(&format!("/v1/operations/{id}"), &key).await.json().await.unwrap();
    assert_eq!(op["state"], "Canceled");
}

#[tokio::test]
async fn lease_requests_are_validated() {
    let app = TestApp::spawn().await;
    let url = format!("{}/v1/leases", app.address);
    for body in [
        json!({"kinds": []}),
        json!({"kinds": ["Bad-Kind"]}),
        json!({"kinds": ["a"], "ttl": "2h"}),
        json!({"kinds": ["a"], "extra": 1}),
    ] {
        let response = app.client.post(&url).bearer_auth(&app.admin_key).json(&body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
    }
    let reader = app.key("projects/queue", longrun::model::Role::Read).await;
    let response = app.client.post(&url).bearer_auth(&reader).json(&json!({"kinds": ["a"]})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let bad_id = app.client.post(format!("{url}/nope:heartbeat")).bearer_auth(&app.admin_key).send().await.unwrap();
    assert_eq!(bad_id.status(), StatusCode::BAD_REQUEST);
}

/// A claim with `Prefer: wait=N`, answered with its status and body.
async fn claim_waiting(client: &reqwest::Client, node: &str, key: &str, seconds: u32) -> (StatusCode, Option<Value>) {
    let response = client
        .post(format!("{node}/v1/leases"))
        .bearer_auth(key)
        .header("prefer", format!("wait={seconds}"))
        .json(&json!({"kinds": ["deleteDevBox"], "scope": "projects/waitq"}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.ok())
}

#[tokio::test]
async fn a_waiting_claim_takes_the_operation_created_while_it_waits() {
    let app = TestApp::spawn().await;
    let (node, key, client) = (app.address.clone(), app.admin_key.clone(), app.client.clone());
    let waiting = tokio::spawn(async move { claim_waiting(&client, &node, &key, 30).await });
    until_a_claim_waits(&app.client, &app.address).await;
    // Creations it cannot claim (another kind, another scope) do not end the wait.
    app.create_ok("projects/waitq", "otherKind").await;
    app.create_ok("projects/elsewhere", "deleteDevBox").await;
    let wanted = id_of(&app.create_ok("projects/waitq", "deleteDevBox").await);
    let (status, lease) = waiting.await.unwrap();
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(lease.unwrap()["operation"]["id"], wanted.as_str());
}

#[tokio::test]
async fn a_waiting_claim_with_nothing_to_claim_answers_no_content_at_its_end() {
    let app = TestApp::spawn().await;
    let (status, body) = claim_waiting(&app.client, &app.address, &app.admin_key, 1).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, None));
}

#[tokio::test]
async fn a_released_operation_goes_to_the_next_worker_at_once() {
    let app = TestApp::spawn().await;
    let (node, key, client) = (app.address.clone(), app.admin_key.clone(), app.client.clone());
    let id = id_of(&app.create_ok("projects/queue", "deleteDevBox").await);
    let first = claim(&client, &node, &key, "1h").await.unwrap()["leaseId"].as_str().unwrap().to_owned();
    let released = lease_call(&client, &node, &key, &first, "release", json!({})).await;
    assert_eq!(released.status(), StatusCode::OK);
    let second = claim(&client, &node, &key, "30s").await.expect("claimable again without waiting an hour");
    assert_eq!(second["operation"]["id"], id.as_str());
    assert_eq!(second["attempt"], 2);
    let stale = lease_call(&client, &node, &key, &first, "heartbeat", json!({})).await;
    assert_eq!(stale.status(), StatusCode::CONFLICT, "the released lease is lost for good");
}

#[tokio::test]
async fn a_leased_operation_shows_who_holds_it_until_when_and_not_after_it_ends() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("projects/held", "deleteDevBox").await);
    let lease = claim(&app.client, &app.address, &app.admin_key, "45s").await.expect("one to claim");
    let read = || async {
        app.get_bearer(&format!("/v1/operations/{id}"), &app.admin_key).await.json::<Value>().await.unwrap()
    };
    let held = read().await;
    assert_eq!(held["lease"]["owner"], lease["operation"]["lease"]["owner"]);
    assert_eq!(held["lease"]["expiresAt"], lease["expiresAt"], "the lease's own expiry");
    assert!(held["lease"]["owner"].as_str().unwrap().starts_with("key_"), "the claiming key when no owner is named");
    let done = lease_call(
        &app.client,
        &app.address,
        &app.admin_key,
        lease["leaseId"].as_str().unwrap(),
        "complete",
        json!({"state": "Succeeded"}),
    );
    assert_eq!(done.await.status(), StatusCode::OK);
    assert_eq!(read().await.get("lease"), None, "a finished operation is held by no one");
}
