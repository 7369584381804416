//! OpenTelemetry: one trace from the request that created an operation,
//! through the worker's claim and completion, to its webhook delivery,
//! exported over OTLP/HTTP to a small receiver decoding the protobuf; and,
//! with tracing off, the creating request's `traceparent` handed on as is.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;
use serde_json::{Value, json};

use crate::helpers::{TestApp, cli_key};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
const OTHER_CALLER_SPAN: &str = "1a2b3c4d5e6f7081";

/// What the OTLP receiver and the webhook receiver got.
#[derive(Clone, Default)]
struct Received {
    spans: Arc<Mutex<Vec<Span>>>,
    hooks: Arc<Mutex<Vec<HeaderMap>>>,
}

async fn collect(State(got): State<Received>, body: Bytes) -> (StatusCode, [(&'static str, &'static str); 1], Vec<u8>) {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf body");
    for resource in request.resource_spans {
        let named = resource.resource.iter().flat_map(|r| &r.attributes).any(|a| a.key == "service.name");
        assert!(named, "every export names its service");
        got.spans.lock().unwrap().extend(resource.scope_spans.into_iter().flat_map(|s| s.spans));
    }
    (StatusCode::OK, [("content-type", "application/x-protobuf")], Vec::new())
}

async fn hook(State(got): State<Received>, headers: HeaderMap) -> StatusCode {
    got.hooks.lock().unwrap().push(headers);
    StatusCode::NO_CONTENT
}

/// Both receivers on one port: `/v1/traces` and `/hook`.
async fn receivers() -> (Received, String) {
    let got = Received::default();
    let app = Router::new().route("/v1/traces", post(collect)).route("/hook", post(hook)).with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (got, address)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a AnyValue> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| a.value.as_ref()?.value.as_ref())
}

fn text(span: &Span, key: &str) -> String {
    match attribute(span, key) {
        Some(AnyValue::StringValue(text)) => text.clone(),
        other => panic!("{key} is {other:?} on {}", span.name),
    }
}

fn number(span: &Span, key: &str) -> i64 {
    match attribute(span, key) {
        Some(AnyValue::IntValue(n)) => *n,
        other => panic!("{key} is {other:?} on {}", span.name),
    }
}

/// Waits for the span named `name` whose attributes satisfy `matches`.
async fn span_named(got: &Received, name: &str, matches: impl Fn(&Span) -> bool) -> Span {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(span) = got.spans.lock().unwrap().iter().find(|s| s.name == name && matches(s)) {
            return span.clone();
        }
        let names: Vec<String> = got.spans.lock().unwrap().iter().map(|s| s.name.clone()).collect();
        assert!(Instant::now() < deadline, "no span {name:?} exported; got {names:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A `longrun serve` with JSON logs exporting traces; killed when dropped.
struct Traced {
    child: std::process::Child,
    address: String,
}

impl Traced {
    fn start(dir: &std::path::Path, otlp: &str) -> Traced {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new(env!("CARGO_BIN_EXE_longrun"))
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json", "--otlp-endpoint", otlp])
            .env("OTEL_BSP_SCHEDULE_DELAY", "50")
            .env_remove("OTEL_SERVICE_NAME")
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut traced = Traced { child, address: String::new() };
        loop {
            let mut line = String::new();
            assert!(stdout.read_line(&mut line).unwrap() > 0, "exited before listening");
            if let Some(rest) = line.strip_prefix("longrun listening on ") {
                traced.address = rest.split_whitespace().next().unwrap().to_owned();
                return traced;
            }
        }
    }

    /// SIGTERM; returns what it logged.
    fn stop(&mut self) -> String {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        let mut logs = String::new();
        std::io::Read::read_to_string(&mut self.child.stderr.take().unwrap(), &mut logs).unwrap();
        assert!(self.child.wait().unwrap().success());
        logs
    }
}

impl Drop for Traced {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn the_create_the_claim_the_completion_and_the_delivery_share_the_callers_trace() {
    let (got, receivers) = receivers().await;
    let dir = tempfile::tempdir().unwrap();
    let key = cli_key(dir.path(), &[], "*", "admin");
    let mut server = Traced::start(dir.path(), &receivers);
    let address = server.address.clone();
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| client.post(format!("{address}{path}")).bearer_auth(&key).json(&body);

    let hooked = post(
        "/v1/webhooks",
        json!({"scope": "projects/traced", "url": format!("{receivers}/hook"), "events": "terminal"}),
    );
    let hooked = hooked.send().await.unwrap();
    assert_eq!(hooked.status(), 201);
    let secret = hooked.json::<Value>().await.unwrap()["secret"].as_str().unwrap().to_owned();
    let created = post("/v1/operations", json!({"scope": "projects/traced", "kind": "render"}))
        .header("traceparent", format!("00-{TRACE}-{CALLER_SPAN}-01"))
        .header("tracestate", "vendor=opaque")
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();

    // The worker brings no trace of its own: its claim joins the operation's.
    let claimed = post("/v1/leases", json!({"kinds": ["render"], "scope": "projects/traced"})).send().await.unwrap();
    assert_eq!(claimed.status(), 201);
    let lease: Value = claimed.json().await.unwrap();
    let handed = lease["traceparent"].as_str().expect("the lease carries the operation's traceparent").to_owned();
    // The worker's span, a child of what the lease handed it; the completion is its child.
    let worker_span = "a1b2c3d4e5f60718";
    assert!(handed.starts_with(&format!("00-{TRACE}-")), "{handed}");
    let completed =
        post(&format!("/v1/leases/{}:complete", lease["leaseId"].as_str().unwrap()), json!({"state": "Succeeded"}))
            .header("traceparent", format!("00-{TRACE}-{worker_span}-01"))
            .send()
            .await
            .unwrap();
    assert_eq!(completed.status(), 200);

    let create = span_named(&got, "POST /v1/operations", |_| true).await;
    assert_eq!((hex(&create.trace_id), hex(&create.parent_span_id)), (TRACE.to_owned(), CALLER_SPAN.to_owned()));
    assert_eq!(create.kind, SpanKind::Server as i32);
    assert_eq!(text(&create, "http.request.method"), "POST");
    assert_eq!(text(&create, "http.route"), "/v1/operations");
    assert_eq!(number(&create, "http.response.status_code"), 201);
    assert_eq!(text(&create, "longrun.operation.id"), id);
    assert_eq!(text(&create, "longrun.scope"), "projects/traced");
    assert_eq!(text(&create, "longrun.dialect"), "native");
    assert_eq!(text(&create, "server.address"), "127.0.0.1");
    assert_eq!(
        handed,
        format!("00-{TRACE}-{}-01", hex(&create.span_id)),
        "the create's own span is the parent handed on"
    );
    assert_eq!(create.trace_state, "vendor=opaque", "the caller's tracestate goes along");

    let claim = span_named(&got, "POST /v1/leases", |_| true).await;
    assert_eq!((hex(&claim.trace_id), hex(&claim.parent_span_id)), (TRACE.to_owned(), hex(&create.span_id)));
    assert_eq!(text(&claim, "longrun.operation.id"), id);
    let complete = span_named(&got, "POST /v1/leases/{id}", |_| true).await;
    assert_eq!((hex(&complete.trace_id), hex(&complete.parent_span_id)), (TRACE.to_owned(), worker_span.to_owned()));
    assert_eq!(number(&complete, "http.response.status_code"), 200);

    let delivery = span_named(&got, "POST", |s| s.kind == SpanKind::Client as i32).await;
    assert_eq!((hex(&delivery.trace_id), hex(&delivery.parent_span_id)), (TRACE.to_owned(), hex(&create.span_id)));
    assert_eq!(number(&delivery, "http.response.status_code"), 204);
    assert_eq!(text(&delivery, "longrun.operation.id"), id);
    let hooks = got.hooks.lock().unwrap().clone();
    assert_eq!(hooks.len(), 1);
    assert_eq!(
        hooks[0]["traceparent"],
        format!("00-{TRACE}-{}-01", hex(&delivery.span_id)).as_str(),
        "the receiver continues the delivery's span"
    );

    // Never a credential in a span.
    for span in got.spans.lock().unwrap().iter() {
        let text = format!("{span:?}");
        assert!(!text.contains(&key) && !text.contains(&secret), "{} carries a key or the webhook secret", span.name);
    }

    // A repeatable create (what the SDKs send) runs in a task of its own: its trace still reaches the worker.
    let repeatable = post("/v1/operations", json!({"scope": "projects/traced", "kind": "again"}))
        .header("traceparent", format!("00-{TRACE}-{OTHER_CALLER_SPAN}-01"))
        .header("Repeatability-Request-ID", uuid::Uuid::new_v4().to_string())
        .header("Repeatability-First-Sent", httpdate::fmt_http_date(std::time::SystemTime::now()))
        .send()
        .await
        .unwrap();
    assert_eq!(repeatable.status(), 201);
    let lease: Value = post("/v1/leases", json!({"kinds": ["again"]})).send().await.unwrap().json().await.unwrap();
    let created_again = span_named(&got, "POST /v1/operations", |s| hex(&s.parent_span_id) == OTHER_CALLER_SPAN).await;
    assert_eq!(lease["traceparent"], format!("00-{TRACE}-{}-01", hex(&created_again.span_id)).as_str());

    let logs = server.stop();
    let lines: Vec<Value> =
        logs.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}"))).collect();
    let access = lines
        .iter()
        .find(|l| l["target"] == "longrun::access" && l["route"] == "/v1/operations")
        .expect("the create's access line");
    assert_eq!(
        (access["trace_id"].as_str(), access["span_id"].as_str()),
        (Some(TRACE), Some(hex(&create.span_id).as_str()))
    );
}

#[tokio::test]
async fn a_worker_with_a_trace_of_its_own_keeps_it_and_links_to_the_operations() {
    let (got, receivers) = receivers().await;
    let dir = tempfile::tempdir().unwrap();
    let key = cli_key(dir.path(), &[], "*", "admin");
    let server = Traced::start(dir.path(), &receivers);
    let address = server.address.clone();
    let client = reqwest::Client::new();
    let created = client
        .post(format!("{address}/v1/operations"))
        .bearer_auth(&key)
        .json(&json!({"scope": "projects/traced", "kind": "render"}))
        .header("traceparent", format!("00-{TRACE}-{CALLER_SPAN}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let worker_trace = "0123456789abcdef0123456789abcdef";
    let claimed = client
        .post(format!("{address}/v1/leases"))
        .bearer_auth(&key)
        .json(&json!({"kinds": ["render"]}))
        .header("traceparent", format!("00-{worker_trace}-1111111111111111-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(claimed.status(), 201);

    let create = span_named(&got, "POST /v1/operations", |_| true).await;
    let claim = span_named(&got, "POST /v1/leases", |_| true).await;
    assert_eq!(
        (hex(&claim.trace_id), hex(&claim.parent_span_id)),
        (worker_trace.to_owned(), "1111111111111111".to_owned())
    );
    let links: Vec<(String, String)> = claim.links.iter().map(|l| (hex(&l.trace_id), hex(&l.span_id))).collect();
    assert_eq!(links, vec![(TRACE.to_owned(), hex(&create.span_id))], "linked to the operation's trace");
}

#[tokio::test]
async fn with_tracing_off_the_creating_requests_traceparent_reaches_the_worker_unchanged() {
    let app = TestApp::spawn().await;
    let traceparent = format!("00-{TRACE}-{CALLER_SPAN}-01");
    let created = app
        .client
        .post(format!("{}/v1/operations", app.address))
        .bearer_auth(&app.admin_key)
        .header("traceparent", &traceparent)
        .json(&json!({"scope": "projects/traced", "kind": "render"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    app.create_ok("projects/traced", "plain").await; // no traceparent, none handed on
    let repeatable = app
        .client
        .post(format!("{}/v1/operations", app.address))
        .bearer_auth(&app.admin_key)
        .header("traceparent", &traceparent)
        .header("Repeatability-Request-ID", uuid::Uuid::new_v4().to_string())
        .header("Repeatability-First-Sent", httpdate::fmt_http_date(std::time::SystemTime::now()))
        .json(&json!({"scope": "projects/traced", "kind": "repeatable"}))
        .send()
        .await
        .unwrap();
    assert_eq!(repeatable.status(), 201);
    app.client
        .post(format!("{}/v1/operations", app.address))
        .bearer_auth(&app.admin_key)
        .header("traceparent", "00-not-a-trace-01")
        .json(&json!({"scope": "projects/traced", "kind": "garbled"}))
        .send()
        .await
        .unwrap();
    let mut handed = HashMap::new();
    for kind in ["render", "plain", "garbled", "repeatable"] {
        let claimed = app
            .client
            .post(format!("{}/v1/leases", app.address))
            .bearer_auth(&app.admin_key)
            .json(&json!({"kinds": [kind]}))
            .send()
            .await
            .unwrap();
        assert_eq!(claimed.status(), 201);
        handed.insert(kind, claimed.json::<Value>().await.unwrap()["traceparent"].clone());
    }
    assert_eq!(handed["render"], traceparent.as_str());
    assert_eq!(
        handed["repeatable"],
        traceparent.as_str(),
        "a repeatable create runs in a task of its own, its trace too"
    );
    assert_eq!(handed["plain"], Value::Null, "none brought, none kept");
    assert_eq!(handed["garbled"], Value::Null, "an invalid traceparent is ignored, never stored");
}

#[tokio::test]
async fn with_the_collector_down_spans_are_counted_as_dropped_and_trace_context_still_travels() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let otlp = format!("http://{}", dead.local_addr().unwrap());
    drop(dead); // nothing listens there now
    let dir = tempfile::tempdir().unwrap();
    let key = cli_key(dir.path(), &[], "*", "admin");
    let server = Traced::start(dir.path(), &otlp);
    let client = reqwest::Client::new();
    let dropped = async || {
        let metrics = client.get(format!("{}/metrics", server.address)).send().await.unwrap().text().await.unwrap();
        let line = metrics.lines().find(|l| l.starts_with("longrun_otlp_spans_dropped_total "));
        line.map_or(0, |l| l.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap())
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while dropped().await == 0 {
        assert!(Instant::now() < deadline, "no span was counted as dropped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = dropped().await;
    let created = client
        .post(format!("{}/v1/operations", server.address))
        .bearer_auth(&key)
        .header("traceparent", format!("00-{TRACE}-{CALLER_SPAN}-01"))
        .json(&json!({"scope": "projects/traced", "kind": "render"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "a dead collector never fails a request");
    let claimed =
        client.post(format!("{}/v1/leases", server.address)).bearer_auth(&key).json(&json!({"kinds": ["render"]}));
    let claimed = claimed.send().await.unwrap();
    assert_eq!(claimed.status(), 201);
    let lease: Value = claimed.json().await.unwrap();
    let caller = format!("00-{TRACE}-{CALLER_SPAN}-01");
    assert_eq!(lease["traceparent"], caller.as_str(), "the caller's own context, never a span no one got");
    // The create's, the claim's and the first /metrics read's.
    assert!(dropped().await >= before + 3, "shed spans count as dropped");
}
