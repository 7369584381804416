//! Server-sent events: one operation's changes and a scope's, resumable
//! with Last-Event-ID.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, id_of, unknown_id};

/// Reads SSE frames off a streaming response.
pub struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    pub async fn open(app: &TestApp, path: &str, last_event_id: Option<&str>) -> Events {
        let mut request = app.client.get(format!("{}{path}", app.address)).bearer_auth(&app.admin_key);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Events { response, buffer: String::new() }
    }

    /// The next event's (id, data), skipping keep-alive comments.
    pub async fn next(&mut self) -> (String, Value) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| frame.lines().find_map(|l| l.strip_prefix(name)).map(str::to_owned);
                if let (Some(id), Some(data)) =
                    (field("id: ").or_else(|| field("id:")), field("data: ").or_else(|| field("data:")))
                {
                    assert_eq!(field("event: ").or_else(|| field("event:")).as_deref(), Some("operation"));
                    return (id, serde_json::from_str(&data).unwrap());
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.response.chunk())
                .await
                .expect("an event within 10 s")
                .unwrap()
                .expect("the stream stays open");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

#[tokio::test]
async fn an_operations_stream_carries_each_state_and_resumes_with_the_latest() {
    let app = TestApp::spawn().await;
    let id = id_of(&app.create_ok("projects/streamed", "deleteDevBox").await);
    let path = format!("/v1/operations/{id}/events");
    let mut events = Events::open(&app, &path, None).await;
    let (first_id, first) = events.next().await;
    assert_eq!((first_id.as_str(), first["state"].as_str()), ("1", Some("NotStarted")));
    app.patch_ok(&id, json!({"state": "Running", "percentComplete": 20})).await;
    let (second_id, second) = events.next().await;
    assert_eq!((second_id.as_str(), second["percentComplete"].as_f64()), ("2", Some(20.0)));
    drop(events);

    // Two changes while disconnected: the reconnect gets the latest state.
    app.patch_ok(&id, json!({"percentComplete": 60})).await;
    app.patch_ok(&id, json!({"state": "Succeeded"})).await;
    let mut resumed = Events::open(&app, &path, Some("2")).await;
    let (resumed_id, latest) = resumed.next().await;
    assert_eq!((resumed_id.as_str(), latest["state"].as_str()), ("4", Some("Succeeded")));
}

#[tokio::test]
async fn a_scope_stream_carries_its_scope_only_and_replays_after_last_event_id() {
    let app = TestApp::spawn().await;
    let mut events = Events::open(&app, "/v1/events?scope=projects/watched", None).await;
    app.create_ok("projects/elsewhere", "deleteDevBox").await;
    let first = id_of(&app.create_ok("projects/watched", "deleteDevBox").await);
    let (first_seq, op) = events.next().await;
    assert_eq!(op["id"], first.as_str(), "the other scope's change is not on this stream");
    app.patch_ok(&first, json!({"state": "Running"})).await;
    let (second_seq, op) = events.next().await;
    assert_eq!(op["state"], "Running");
    assert!(second_seq.parse::<i64>().unwrap() > first_seq.parse::<i64>().unwrap());
    drop(events);

    // Missed while away: replayed from the change log, in order.
    let second = id_of(&app.create_ok("projects/watched", "deleteDevBox").await);
    app.patch_ok(&first, json!({"state": "Succeeded"})).await;
    let mut resumed = Events::open(&app, "/v1/events?scope=projects/watched", Some(&second_seq)).await;
    let (_, replayed) = resumed.next().await;
    assert_eq!(replayed["id"], second.as_str());
    let (_, replayed) = resumed.next().await;
    assert_eq!((replayed["id"].as_str(), replayed["state"].as_str()), (Some(first.as_str()), Some("Succeeded")));
}

#[tokio::test]
async fn streams_refuse_what_the_key_cannot_see() {
    let app = TestApp::spawn().await;
    let unknown = app.get_bearer(&format!("/v1/operations/{}/events", unknown_id()), &app.admin_key).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let key = app.key("projects/mine", longrun::model::Role::Read).await;
    let foreign = app.get_bearer("/v1/events?scope=projects/theirs", &key).await;
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    let theirs = id_of(&app.create_ok("projects/theirs", "deleteDevBox").await);
    let hidden = app.get_bearer(&format!("/v1/operations/{theirs}/events"), &key).await;
    assert_eq!(hidden.status(), StatusCode::NOT_FOUND);
}
