//! Hostile clients: floods get 429 with `Retry-After` in each dialect's
//! envelope, held streams are capped per credential, oversized heads and
//! bodies are refused, path tricks stay inside their route, and a slowloris
//! neither stops others being served nor keeps its connections.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{ServeProcess, cli_key, create_on, id_of};

/// Sends `request` until it is refused with 429 (at most 100 times).
async fn until_refused(request: impl Fn() -> reqwest::RequestBuilder) -> reqwest::Response {
    for _ in 0..100 {
        let response = request().send().await.unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            return response;
        }
        assert!(response.status().is_success() || response.status() == StatusCode::NOT_FOUND, "{response:?}");
    }
    panic!("100 requests at a 2/s limit were never refused");
}

#[tokio::test]
async fn a_flood_gets_429_with_retry_after_in_each_dialects_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = crate::helpers::tenant();
    let keys: Vec<String> = ["projects/flooded", "accounts/flooded", &format!("tenants/{tenant}"), "projects/flooded"]
        .iter()
        .map(|scope| cli_key(dir.path(), &[], scope, "read"))
        .collect();
    let server = ServeProcess::start(dir.path(), &["--rate-limit", "2"]);
    let client = reqwest::Client::new();
    let id = uuid::Uuid::new_v4();
    let base = &server.address;

    let devcenter = until_refused(|| {
        client
            .get(format!("{base}/projects/flooded/operationstatuses/{id}?api-version=2025-02-01"))
            .bearer_auth(&keys[0])
    })
    .await;
    let face = until_refused(|| {
        client.get(format!("{base}/face/v1.0-preview/operations/{id}")).header("Ocp-Apim-Subscription-Key", &keys[1])
    })
    .await;
    let sphere = until_refused(|| {
        client
            .get(format!("{base}/v2/tenants/{tenant}/operationTypes/imageUpload/operations/{id}"))
            .bearer_auth(&keys[2])
    })
    .await;
    for (dialect, response) in [("devcenter", devcenter), ("face", face), ("sphere", sphere)] {
        let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(retry_after >= 1, "{dialect}: Retry-After {retry_after}");
        let body: Value = response.json().await.unwrap();
        assert!(body.to_string().contains("TooManyRequests"), "{dialect}: {body}");
    }
    // Another credential has its own bucket.
    let fresh = client
        .get(format!("{base}/projects/flooded/operationstatuses/{id}?api-version=2025-02-01"))
        .bearer_auth(&keys[3])
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn long_polls_count_as_held_streams_not_requests() {
    let dir = tempfile::tempdir().unwrap();
    let key = cli_key(dir.path(), &[], "*", "admin");
    let server = ServeProcess::start(dir.path(), &["--max-streams", "2"]);
    let client = reqwest::Client::new();
    let base = server.address.clone();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(id_of(&create_on(&client, &base, &key, "projects/streams", "deleteDevBox").await));
    }
    let wait = |id: &str, timeout: &str| {
        client.get(format!("{base}/v1/operations/{id}:wait?timeout={timeout}")).bearer_auth(&key).send()
    };
    let first = tokio::spawn(wait(&ids[0], "30s"));
    let second = tokio::spawn(wait(&ids[1], "30s"));
    // Once the server holds both (its gauge of waited-on operations says
    // so), a third is refused.
    for attempt in 0.. {
        let metrics = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
        if metrics.lines().any(|l| l == "longrun_waiting_operations 2") {
            break;
        }
        assert!(attempt < 100, "the two long-polls were never held:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let third = wait(&ids[2], "1s").await.unwrap();
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(third.headers().contains_key("retry-after"));
    // Plain requests are not streams: still served.
    let get = client.get(format!("{base}/v1/operations/{}", ids[2])).bearer_auth(&key).send().await.unwrap();
    assert_eq!(get.status(), StatusCode::OK);

    // A finished long-poll frees its slot.
    let patch = client
        .patch(format!("{base}/v1/operations/{}", ids[0]))
        .bearer_auth(&key)
        .json(&json!({"state": "Running"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), StatusCode::OK);
    assert_eq!(first.await.unwrap().unwrap().status(), StatusCode::OK);
    let cancel = client.post(format!("{base}/v1/operations/{}:cancel", ids[1])).bearer_auth(&key).send();
    assert_eq!(cancel.await.unwrap().status(), StatusCode::OK);
    assert_eq!(second.await.unwrap().unwrap().status(), StatusCode::OK);
    assert_eq!(wait(&ids[2], "1s").await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn oversized_heads_and_bodies_and_deep_json_are_refused_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let key = cli_key(dir.path(), &[], "*", "admin");
    let server = ServeProcess::start(dir.path(), &[]);
    let client = reqwest::Client::new();
    let base = &server.address;

    let huge = "x".repeat(20 * 1024);
    let head = client.get(format!("{base}/healthz")).header("x-padding", &huge).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);

    let body = json!({"scope": "projects/hostile", "kind": "x", "properties": {"blob": "y".repeat(2 << 20)}});
    let big = client.post(format!("{base}/v1/operations")).bearer_auth(&key).json(&body).send().await.unwrap();
    assert_eq!(big.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let deep = format!(
        r#"{{"scope": "projects/hostile", "kind": "x", "properties": {{"d": {}{}}}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let nested = client
        .post(format!("{base}/v1/operations"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .await
        .unwrap();
    assert_eq!(nested.status(), StatusCode::BAD_REQUEST);
    assert_eq!(nested.headers()["x-ms-error-code"], "InvalidRequestContent");
    assert_eq!(client.get(format!("{base}/healthz")).send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn encoded_slashes_and_dots_in_ids_are_bad_requests_not_other_routes() {
    let dir = tempfile::tempdir().unwrap();
    let key = cli_key(dir.path(), &[], "*", "admin");
    let server = ServeProcess::start(dir.path(), &[]);
    let client = reqwest::Client::new();
    let base = &server.address;
    let real = id_of(&create_on(&client, base, &key, "projects/tricks", "deleteDevBox").await);
    for path in [
        format!("/v1/operations/{real}%2Fevents"),
        format!("/v1/operations/..%2F..%2Fv1%2Foperations%2F{real}"),
        format!("/projects/tricks/operationstatuses/{real}%2F..?api-version=2025-02-01"),
        format!("/face/v1.0-preview/operations/%2E%2E%2F{real}"),
        "/v1/operations/%FF%FE".to_owned(),
    ] {
        let request = client.get(format!("{base}{path}")).bearer_auth(&key).header("Ocp-Apim-Subscription-Key", &key);
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        assert!(!response.text().await.unwrap().contains("\"percentComplete\""), "{path} reached an operation");
    }
}

#[tokio::test]
async fn a_slowloris_does_not_stop_others_and_loses_its_connections() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::start(dir.path(), &[]);
    let address = server.address.trim_start_matches("http://").to_owned();
    let mut slow = Vec::new();
    for _ in 0..200 {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
        slow.push(stream);
    }
    let client = reqwest::Client::new();
    let started = tokio::time::Instant::now();
    let mut served = 0;
    // One header byte a second from each, for longer than the head timeout.
    while started.elapsed() < Duration::from_secs(13) {
        for stream in &mut slow {
            let _ = stream.write_all(b"a").await; // fails once the server closed it
        }
        let normal = client.get(format!("{}/healthz", server.address)).send().await.unwrap();
        assert_eq!(normal.status(), StatusCode::OK, "a normal client is served meanwhile");
        served += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(served >= 10);
    // Every trickling connection was cut at the 10 s head timeout.
    for stream in &mut slow {
        let mut buffer = [0u8; 256];
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer)).await;
        match read {
            Ok(Ok(n)) => assert!(n == 0 || String::from_utf8_lossy(&buffer[..n]).contains(" 408 "), "still open"),
            Ok(Err(_)) => {} // reset by the server
            Err(_) => panic!("a trickling connection is still open after the head timeout"),
        }
    }
}
