//! The HTTP layer's refusals, over raw sockets: a body is read only after
//! its caller is known and allowed, within a deadline and a declared size;
//! heads HTTP forbids are 400; every such refusal is in the envelope of the
//! dialect whose path matched, with a request id.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{ServeProcess, TestApp, cli_key};

/// One HTTP/1.1 response as read off the socket.
struct RawResponse {
    status: u16,
    head: String,
    body: Value,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

async fn connect(address: &str) -> TcpStream {
    TcpStream::connect(address.trim_start_matches("http://")).await.unwrap()
}

/// Reads one response (head and `Content-Length` body) within `patience`.
async fn read_response(stream: &mut TcpStream, patience: Duration) -> RawResponse {
    let read = async {
        let mut bytes = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                    .map_or(0, |v| v.parse().unwrap());
                if bytes.len() >= end + 4 + length {
                    let status = head[9..12].parse().unwrap();
                    let body = serde_json::from_slice(&bytes[end + 4..end + 4 + length]).unwrap_or(Value::Null);
                    return RawResponse { status, head, body };
                }
            }
            let n = stream.read(&mut buffer).await.unwrap();
            assert!(n > 0, "the connection closed before a whole response: {}", String::from_utf8_lossy(&bytes));
            bytes.extend_from_slice(&buffer[..n]);
        }
    };
    tokio::time::timeout(patience, read).await.expect("no answer in time")
}

/// True when the server closes `stream` (after whatever it had to say).
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buffer = [0u8; 1024];
    matches!(tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer)).await, Ok(Ok(0) | Err(_)))
}

/// Sends a head announcing `length` body bytes and the first byte of it.
async fn start_body(address: &str, target: &str, credential: &str, length: usize) -> TcpStream {
    let mut stream = connect(address).await;
    let head = format!(
        "POST {target} HTTP/1.1\r\nHost: x\r\n{credential}Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n{{"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

#[tokio::test]
async fn a_body_without_a_valid_credential_is_refused_401_at_once_unread_and_the_connection_closed() {
    let app = TestApp::spawn().await;
    for credential in ["", "Authorization: Bearer lr_not_a_key\r\n"] {
        let mut stream = start_body(&app.address, "/v1/operations", credential, 20_002).await;
        let refused = read_response(&mut stream, Duration::from_secs(2)).await;
        assert_eq!(refused.status, 401, "{credential:?}");
        assert_eq!(refused.header("connection"), Some("close"));
        assert!(refused.header("x-ms-request-id").is_some());
        assert_eq!(refused.body["error"]["code"], "Unauthorized", "{}", refused.body);
        assert!(closed_by_server(&mut stream).await, "the unread body's connection is closed");
    }
}

#[tokio::test]
async fn a_credential_without_the_role_is_refused_403_before_its_body_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let face = cli_key(dir.path(), &[], "accounts/edges", "read");
    let native = cli_key(dir.path(), &[], "projects/edges", "read");
    let server = ServeProcess::start(dir.path(), &[]);
    let cases = [
        ("/face/v1.0/snapshots", format!("Ocp-Apim-Subscription-Key: {face}\r\n")),
        ("/v1/operations", format!("Authorization: Bearer {native}\r\n")),
        ("/v1/leases", format!("Authorization: Bearer {native}\r\n")),
    ];
    for (target, credential) in cases {
        // A body that is not even JSON: the role is checked first.
        let mut stream = start_body(&server.address, target, &credential, 5000).await;
        let refused = read_response(&mut stream, Duration::from_secs(2)).await;
        assert_eq!(refused.status, 403, "{target}: {}", refused.body);
        assert_eq!(refused.header("connection"), Some("close"), "{target}");
        assert!(closed_by_server(&mut stream).await, "{target}");
    }
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_refused_413_before_the_body_arrives() {
    let app = TestApp::spawn().await;
    let credential = format!("Authorization: Bearer {}\r\n", app.admin_key);
    let mut stream = start_body(&app.address, "/v1/operations", &credential, 3 << 20).await;
    stream.write_all(&vec![b' '; 64 * 1024]).await.unwrap();
    let refused = read_response(&mut stream, Duration::from_secs(2)).await;
    assert_eq!(refused.status, 413);
    assert_eq!(refused.body["error"]["code"], "RequestBodyTooLarge");
    assert_eq!(refused.header("connection"), Some("close"));
}

#[tokio::test]
async fn a_body_slower_than_the_body_timeout_is_answered_408_and_its_connection_closed() {
    let dir = tempfile::tempdir().unwrap();
    let key = cli_key(dir.path(), &[], "*", "admin");
    let server = ServeProcess::start(dir.path(), &["--body-timeout", "1s"]);
    let credential = format!("Authorization: Bearer {key}\r\n");
    let mut stream = start_body(&server.address, "/v1/operations", &credential, 100).await;
    let refused = read_response(&mut stream, Duration::from_secs(5)).await;
    assert_eq!(refused.status, 408, "{}", refused.body);
    assert_eq!(refused.body["error"]["code"], "RequestTimeout");
    assert_eq!(refused.header("connection"), Some("close"));
    assert!(refused.header("x-ms-request-id").is_some());
    assert!(closed_by_server(&mut stream).await);

    // A body that arrives in time, in pieces, is served as usual.
    let body = br#"{"scope": "projects/edges", "kind": "slowButInTime"}"#;
    let mut stream = start_body(&server.address, "/v1/operations", &credential, body.len()).await;
    for piece in body[1..].chunks(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        stream.write_all(piece).await.unwrap();
    }
    let created = read_response(&mut stream, Duration::from_secs(5)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.header("connection"), None, "the connection stays open");
}

#[tokio::test]
async fn heads_with_a_missing_or_repeated_host_or_a_repeated_credential_are_400_in_the_dialects_envelope() {
    let app = TestApp::spawn().await;
    let key = &app.admin_key;
    let tenant = crate::helpers::tenant();
    let id = uuid::Uuid::new_v4();
    let devcenter = format!("/projects/p/operationstatuses/{id}?api-version=2025-02-01");
    let sphere = format!("/v2/tenants/{tenant}/operations/{id}");
    let face = format!("/face/v1.0/operations/{id}");
    let cases = [
        (devcenter.clone(), format!("Authorization: Bearer {key}\r\n")),
        (devcenter.clone(), format!("Host: a\r\nHost: b\r\nAuthorization: Bearer {key}\r\n")),
        (sphere.clone(), format!("Host: x\r\nAuthorization: Bearer {key}\r\nAuthorization: Bearer other\r\n")),
        (face.clone(), format!("Host: x\r\nOcp-Apim-Subscription-Key: {key}\r\nOcp-Apim-Subscription-Key: {key}\r\n")),
        (
            "/v1/operations".to_owned(),
            format!("Host: x\r\nAuthorization: Bearer {key}\r\nAuthorization: Bearer {key}\r\n"),
        ),
    ];
    for (target, headers) in cases {
        let mut stream = connect(&app.address).await;
        stream.write_all(format!("GET {target} HTTP/1.1\r\n{headers}\r\n").as_bytes()).await.unwrap();
        let refused = read_response(&mut stream, Duration::from_secs(2)).await;
        assert_eq!(refused.status, 400, "{target} {headers:?}");
        assert!(refused.header("x-ms-request-id").is_some(), "{target}");
        let code =
            if target.starts_with("/v2/") { &refused.body[0]["ErrorCode"] } else { &refused.body["error"]["code"] };
        assert!(code.is_string(), "{target}: the dialect's envelope, got {}", refused.body);
    }
    // HTTP/1.0 has no Host requirement.
    let mut stream = connect(&app.address).await;
    stream.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").await.unwrap();
    assert_eq!(read_response(&mut stream, Duration::from_secs(2)).await.status, 200);
}

#[tokio::test]
async fn a_head_over_16_kib_is_431_in_the_dialects_envelope() {
    let app = TestApp::spawn().await;
    let padding = "x".repeat(20 * 1024);
    let target = format!("/face/v1.0/operations/{}", uuid::Uuid::new_v4());
    let mut stream = connect(&app.address).await;
    let head = format!("GET {target} HTTP/1.1\r\nHost: x\r\nX-Padding: {padding}\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let refused = read_response(&mut stream, Duration::from_secs(2)).await;
    assert_eq!(refused.status, 431);
    assert!(refused.header("x-ms-request-id").is_some());
    assert!(refused.body["error"]["code"].is_string(), "Face's envelope: {}", refused.body);
}

#[tokio::test]
async fn a_client_that_half_closes_after_a_complete_request_still_gets_its_answer() {
    let app = TestApp::spawn().await;
    let mut stream = connect(&app.address).await;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    stream.shutdown().await.unwrap();
    let answer = read_response(&mut stream, Duration::from_secs(2)).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["status"], "ok");
}
