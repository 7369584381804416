//! Two `longrun serve` processes sharing one PostgreSQL database: what one
//! node writes, the other serves at once, and concurrent conditional
//! writes through both lose nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ServeProcess, cli_key, create_on, postgres_url, refused_within_a_second, run_longrun};

const PATCHES: usize = 1000;
const IN_FLIGHT: usize = 32;

#[tokio::test]
async fn two_nodes_share_one_database() {
    let Some(base) = postgres_url("two_nodes_share_one_database") else { return };
    let url = longrun::store::postgres::scratch_schema(&base).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store_args = ["--store", url.as_str()];
    let a = ServeProcess::start(dir.path(), &store_args);
    let b = ServeProcess::start(dir.path(), &store_args);
    let key = cli_key(dir.path(), &store_args, "*", "admin");
    let client = reqwest::Client::new();

    // Create on A, read on B through every dialect.
    let tenant = uuid::Uuid::new_v4();
    for (scope, kind) in [
        (format!("tenants/{tenant}"), "imageUpload"),
        ("projects/shared".to_owned(), "deleteDevBox"),
        ("accounts/shared".to_owned(), "takeSnapshot"),
    ] {
        let created = client
            .post(format!("{}/v1/operations", a.address))
            .bearer_auth(&key)
            .json(&json!({"scope": scope, "kind": kind}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), StatusCode::CREATED);
        let location = created.headers()["operation-location"].to_str().unwrap().to_owned();
        let mut read = client.get(format!("{}{location}", b.address));
        read = if location.starts_with("/face/") {
            read.header("Ocp-Apim-Subscription-Key", &key)
        } else {
            read.bearer_auth(&key)
        };
        let response = read.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{location} on node B");
    }

    // Conditional PATCHes split across both nodes: every 200 is one version.
    let created = create_on(&client, &a.address, &key, "projects/shared", "deleteDevBox").await;
    let id = created["id"].as_str().unwrap().to_owned();
    let nodes = Arc::new([a.address.clone(), b.address.clone()]);
    let (ok, stale) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..IN_FLIGHT {
        let (client, key, id, nodes) = (client.clone(), key.clone(), id.clone(), nodes.clone());
        let (ok, stale, next) = (ok.clone(), stale.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= PATCHES as u64 {
                    break;
                }
                let node = &nodes[(n % 2) as usize];
                let url = format!("{node}/v1/operations/{id}");
                let current = client.get(&url).bearer_auth(&key).send().await.unwrap();
                let etag = current.headers()["etag"].clone();
                let patch = client
                    .patch(&url)
                    .bearer_auth(&key)
                    .header("If-Match", etag)
                    .json(&json!({"properties": {format!("write{n}"): n}}))
                    .send()
                    .await
                    .unwrap();
                match patch.status() {
                    StatusCode::OK => ok.fetch_add(1, Ordering::SeqCst),
                    StatusCode::PRECONDITION_FAILED => stale.fetch_add(1, Ordering::SeqCst),
                    other => panic!("unexpected {other}: {:?}", patch.text().await),
                };
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    let (ok, stale) = (ok.load(Ordering::SeqCst), stale.load(Ordering::SeqCst));
    assert_eq!(ok + stale, PATCHES as u64);
    let last: Value = client
        .get(format!("{}/v1/operations/{id}", b.address))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        last["version"].as_u64().unwrap(),
        1 + ok,
        "every acknowledged PATCH is one version ({ok} ok, {stale} stale)"
    );
    assert_eq!(last["properties"].as_object().unwrap().len() as u64, ok, "and its write is there");
    eprintln!("two nodes: {ok} PATCHes applied, {stale} refused with 412");

    drop((a, b));
    longrun::store::postgres::drop_scratch_schema(&url).await.unwrap();
}

#[tokio::test]
async fn a_key_revoked_on_postgresql_is_refused_by_every_node_within_a_second() {
    let Some(base) = postgres_url("a_key_revoked_on_postgresql_is_refused_by_every_node_within_a_second") else {
        return;
    };
    let url = longrun::store::postgres::scratch_schema(&base).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store_args = ["--store", url.as_str()];
    let (a, b) = (ServeProcess::start(dir.path(), &store_args), ServeProcess::start(dir.path(), &store_args));
    let key = cli_key(dir.path(), &store_args, "projects/revoked", "read");
    let client = reqwest::Client::new();
    let read = async |node: &str| {
        let url = format!("{node}/v1/operations?scope=projects/revoked");
        client.get(url).bearer_auth(&key).send().await.unwrap().status()
    };
    assert_eq!(read(&a.address).await, StatusCode::OK);
    assert_eq!(read(&b.address).await, StatusCode::OK, "both nodes now remember the key");
    let listed = String::from_utf8(run_longrun(dir.path(), &["key", "list", "--store", &url]).stdout).unwrap();
    let id = listed.lines().find(|l| l.contains("projects/revoked")).unwrap().split_whitespace().next().unwrap();
    assert!(run_longrun(dir.path(), &["key", "revoke", id, "--store", &url]).status.success());
    refused_within_a_second(async || read(&a.address).await).await;
    refused_within_a_second(async || read(&b.address).await).await;
    drop((a, b));
    longrun::store::postgres::drop_scratch_schema(&url).await.unwrap();
}
