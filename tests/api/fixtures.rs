//! Data files of every released SQLite schema version (`tests/fixtures/
//! sqlite-v{N}/`) still open, and read back exactly, under this build: an
//! upgrade never loses or garbles what an older longrun stored.
//!
//! `scripts/regenerate-fixture` writes the current version's fixture through
//! the real API (`regenerate_the_current_schema_fixture`, ignored otherwise).

use std::path::{Path, PathBuf};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ServeProcess, cli_key};

/// Retention far beyond any test run, so finished operations in a fixture
/// never read as expired, however old the fixture is.
const KEEP_FOREVER: [&str; 4] = ["--retention", "36500d", "--retention-failed", "36500d"];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[tokio::test]
async fn every_schema_fixture_opens_and_reads_back_exactly() {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(fixtures()).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("sqlite-v") {
            read_back(&entry.path()).await;
            found.push(name);
        }
    }
    let current = format!("sqlite-v{}", longrun::store::sqlite::SCHEMA_VERSION);
    assert!(found.contains(&current), "no fixture of the current schema version ({current}): {found:?}");
}

async fn read_back(fixture: &Path) {
    let expected: Value = serde_json::from_slice(&std::fs::read(fixture.join("expected.json")).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("longrun-data")).unwrap();
    std::fs::copy(fixture.join("longrun.db"), dir.path().join("longrun-data/longrun.db")).unwrap();
    let server = ServeProcess::start(dir.path(), &KEEP_FOREVER);
    let (client, key) = (reqwest::Client::new(), expected["key"].as_str().unwrap());
    let url = |path: &str| format!("{}{path}", server.address);

    for op in expected["operations"].as_array().unwrap() {
        let id = op["id"].as_str().unwrap();
        let response = client.get(url(&format!("/v1/operations/{id}"))).bearer_auth(key).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{}: {id}", fixture.display());
        assert_eq!(&response.json::<Value>().await.unwrap(), op, "{}", fixture.display());
    }
    if let Some(hook) = expected["webhook"].as_str() {
        let deliveries = client.get(url(&format!("/v1/webhooks/{hook}/deliveries"))).bearer_auth(key).send().await;
        assert_eq!(deliveries.unwrap().status(), StatusCode::OK, "{}: the webhook is there", fixture.display());
    } else {
        // Older than webhooks (v6): the upgrade made their tables.
        let body = json!({"url": "http://127.0.0.1:9/hook"});
        let created = client.post(url("/v1/webhooks")).bearer_auth(key).json(&body).send().await.unwrap();
        assert_eq!(created.status(), StatusCode::CREATED, "{}", fixture.display());
    }

    // The old file takes new writes too.
    let waiting = expected["operations"].as_array().unwrap().iter().find(|op| op["state"] == "NotStarted").unwrap();
    let patched = client
        .patch(url(&format!("/v1/operations/{}", waiting["id"].as_str().unwrap())))
        .bearer_auth(key)
        .json(&json!({"state": "Running", "percentComplete": 10}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), StatusCode::OK, "{}", fixture.display());

    if let Some(traced) = expected.get("traced") {
        // From v10: the creating request's traceparent reaches the worker.
        let claim = json!({"kinds": [traced["kind"]]});
        let lease = client.post(url("/v1/leases")).bearer_auth(key).json(&claim).send().await.unwrap();
        assert_eq!(lease.status(), StatusCode::CREATED, "{}", fixture.display());
        assert_eq!(lease.json::<Value>().await.unwrap()["traceparent"], traced["traceparent"], "{}", fixture.display());
    }
}

/// Writes `tests/fixtures/sqlite-v{current}/` through the real binary and
/// API: operations in every state (one finished through a worker lease), a
/// key, a webhook, and `expected.json` with what reads must return.
#[tokio::test]
#[ignore = "writes tests/fixtures; run through scripts/regenerate-fixture"]
async fn regenerate_the_current_schema_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServeProcess::start(dir.path(), &KEEP_FOREVER);
    let key = cli_key(dir.path(), &[], "*", "admin");
    let client = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, body: Value| {
        client.request(method, format!("{}{path}", server.address)).bearer_auth(&key).json(&body).send()
    };
    let hook: Value =
        call(reqwest::Method::POST, "/v1/webhooks", json!({"url": "http://127.0.0.1:9/hook", "events": "all"}))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();

    let mut ids = Vec::new();
    for (scope, kind, patches) in [
        ("projects/fixture", "deleteDevBox", vec![]),
        (
            "projects/fixture",
            "startDevBox",
            vec![json!({"state": "Running", "percentComplete": 40, "properties": {"box": "b1"}})],
        ),
        (
            "accounts/fixture",
            "takeSnapshot",
            vec![json!({"state": "Running"}), json!({"state": "Succeeded", "resourceLocation": "/snapshots/s1"})],
        ),
        (
            "tenants/143adbc9-1bf0-4be2-84a2-084a331d81cb",
            "imageUpload",
            vec![json!({"state": "Failed", "error": {"code": "E", "message": "bad image", "target": "image"}})],
        ),
        (
            "projects/fixture",
            "stopDevBox",
            vec![json!({"state": "CompleteWithErrors", "error": {"code": "Partial", "message": "1 of 2"}})],
        ),
        ("projects/fixture", "restartDevBox", vec![json!({"state": "Canceled"})]),
    ] {
        let created: Value = call(reqwest::Method::POST, "/v1/operations", json!({"scope": scope, "kind": kind}))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = created["id"].as_str().unwrap().to_owned();
        for patch in patches {
            let response = call(reqwest::Method::PATCH, &format!("/v1/operations/{id}"), patch).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
        }
        ids.push(id);
    }
    // One finished by a worker: attempts = 1.
    let leased =
        call(reqwest::Method::POST, "/v1/operations", json!({"scope": "projects/fixture", "kind": "leasedWork"}))
            .await
            .unwrap();
    ids.push(leased.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned());
    let lease: Value = call(reqwest::Method::POST, "/v1/leases", json!({"kinds": ["leasedWork"], "ttl": "1m"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let lease_id = lease["leaseId"].as_str().unwrap();
    let done = call(reqwest::Method::POST, &format!("/v1/leases/{lease_id}:complete"), json!({"state": "Succeeded"}))
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::OK);

    // One created in a trace (v10 on): its worker must still be handed it.
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let traced = client
        .post(format!("{}/v1/operations", server.address))
        .bearer_auth(&key)
        .header("traceparent", traceparent)
        .json(&json!({"scope": "projects/fixture", "kind": "tracedWork"}))
        .send()
        .await
        .unwrap();
    assert_eq!(traced.status(), StatusCode::CREATED);
    ids.push(traced.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned());

    let mut operations = Vec::new();
    for id in &ids {
        operations.push(
            call(reqwest::Method::GET, &format!("/v1/operations/{id}"), Value::Null)
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap(),
        );
    }
    assert!(server.terminate().success());

    let target = fixtures().join(format!("sqlite-v{}", longrun::store::sqlite::SCHEMA_VERSION));
    std::fs::create_dir_all(&target).unwrap();
    let file = target.join("longrun.db");
    let _ = std::fs::remove_file(&file);
    // One compact file, WAL folded in.
    rusqlite::Connection::open(dir.path().join("longrun-data/longrun.db"))
        .unwrap()
        .execute("VACUUM INTO ?1", [file.to_str().unwrap()])
        .unwrap();
    let traced = json!({"kind": "tracedWork", "traceparent": traceparent});
    let expected = json!({"key": key, "webhook": hook["id"], "operations": operations, "traced": traced});
    std::fs::write(target.join("expected.json"), serde_json::to_string_pretty(&expected).unwrap() + "\n").unwrap();
}
