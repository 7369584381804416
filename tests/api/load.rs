//! A write load against a running `longrun serve` that journals every
//! acknowledged (2xx) write, and the checks that nothing acknowledged was
//! lost: shared by the backup, graceful-shutdown and crash-campaign tests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use longrun::model::Timestamp;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Kind of the operations workers claim through leases.
pub const LEASED_KIND: &str = "loadLeased";

/// The highest acknowledged version of an operation and its state then.
#[derive(Debug, Clone, PartialEq)]
pub struct Ack {
    /// The version a 2xx answer carried.
    pub version: i64,
    /// The state it carried.
    pub state: String,
}

/// Every acknowledged write, by operation id (the highest version wins).
#[derive(Debug, Clone, Default)]
pub struct Journal(Arc<Mutex<HashMap<String, Ack>>>);

impl Journal {
    /// Records the native operation JSON a 2xx answer carried.
    fn record(&self, op: &Value) {
        let id = op["id"].as_str().expect("operation id").to_owned();
        let ack = Ack { version: op["version"].as_i64().unwrap(), state: op["state"].as_str().unwrap().to_owned() };
        let mut journal = self.0.lock().unwrap();
        let entry = journal.entry(id).or_insert_with(|| ack.clone());
        if ack.version > entry.version {
            *entry = ack;
        }
    }

    /// What was acknowledged up to now.
    pub fn snapshot(&self) -> HashMap<String, Ack> {
        self.0.lock().unwrap().clone()
    }

    /// How many operations have an acknowledged write.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// What the writers saw: 2xx answers, requests that failed at the
/// connection (the server went away), and any other answer (a bug).
#[derive(Debug, Default)]
pub struct Tally {
    /// Acknowledged writes.
    pub acked: AtomicUsize,
    /// Requests without an answer.
    pub connection_errors: AtomicUsize,
    /// Answers that were neither 2xx nor expected: (status, body).
    pub unexpected: Mutex<Vec<(u16, String)>>,
}

/// One load run: writers share a journal and a stop flag.
#[derive(Clone)]
pub struct Load {
    client: reqwest::Client,
    address: String,
    key: String,
    /// Every acknowledged write.
    pub journal: Journal,
    /// What the writers saw.
    pub tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
}

impl Load {
    /// A load against `address` with an admin `key`, recording into `journal`.
    pub fn new(address: &str, key: &str, journal: Journal) -> Load {
        Load {
            client: reqwest::Client::new(),
            address: address.to_owned(),
            key: key.to_owned(),
            journal,
            tally: Arc::default(),
            stop: Arc::default(),
        }
    }

    /// Starts `writers` concurrent writers; each runs until `stop` or until
    /// the server stops answering.
    pub fn start(&self, writers: usize) -> Vec<tokio::task::JoinHandle<()>> {
        (0..writers).map(|n| tokio::spawn(self.clone().write(n))).collect()
    }

    /// Asks the writers to stop after their current request.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Creates operations and drives each to an end: through PATCHes
    /// (Running, progress, then Succeeded / Failed / CompleteWithErrors /
    /// Canceled), or every third one through a worker lease (claim,
    /// heartbeat, complete).
    async fn write(self, writer: usize) {
        for round in 0usize.. {
            let leased = round % 3 == 2;
            let kind = if leased { LEASED_KIND } else { "loadPatched" };
            let Some(op) =
                self.call(Method::POST, "/v1/operations", json!({"scope": "projects/load", "kind": kind})).await
            else {
                return;
            };
            let steps = if leased { self.lease_steps().await } else { self.patch_steps(&op, writer + round).await };
            if steps.is_none() {
                return;
            }
        }
    }

    async fn patch_steps(&self, op: &Value, n: usize) -> Option<()> {
        let path = format!("/v1/operations/{}", op["id"].as_str().unwrap());
        self.call(Method::PATCH, &path, json!({"state": "Running", "percentComplete": 10})).await?;
        self.call(Method::PATCH, &path, json!({"percentComplete": 60})).await?;
        let end = match n % 4 {
            0 => json!({"state": "Succeeded", "percentComplete": 100, "resourceLocation": "/results/r"}),
            1 => json!({"state": "Failed", "error": {"code": "LoadFailed", "message": "as planned"}}),
            2 => json!({"state": "CompleteWithErrors", "error": {"code": "Partial", "message": "some"}}),
            _ => json!({"state": "Canceled"}),
        };
        self.call(Method::PATCH, &path, end).await.map(drop)
    }

    async fn lease_steps(&self) -> Option<()> {
        let claimed = self.call(Method::POST, "/v1/leases", json!({"kinds": [LEASED_KIND], "ttl": "30s"})).await?;
        let Some(lease) = claimed["leaseId"].as_str() else { return Some(()) }; // 204: another writer took it
        let beat = format!("/v1/leases/{lease}:heartbeat");
        self.call(Method::POST, &beat, json!({"percentComplete": 50, "ttl": "30s"})).await?;
        let done = json!({"state": "Succeeded", "resourceLocation": "/results/leased"});
        self.call(Method::POST, &format!("/v1/leases/{lease}:complete"), done).await.map(drop)
    }

    /// One request. A 2xx is journaled; `None` ends the writer (stop asked,
    /// no answer, or an unexpected one, which is kept for the test to see).
    async fn call(&self, method: Method, path: &str, body: Value) -> Option<Value> {
        if self.stop.load(Ordering::SeqCst) {
            return None;
        }
        let request = self.client.request(method, format!("{}{path}", self.address)).bearer_auth(&self.key);
        let response = match request.json(&body).send().await {
            Ok(response) => response,
            Err(_) => {
                self.tally.connection_errors.fetch_add(1, Ordering::SeqCst);
                return None;
            }
        };
        let status = response.status();
        let Ok(text) = response.text().await else {
            self.tally.connection_errors.fetch_add(1, Ordering::SeqCst);
            return None;
        };
        if status == StatusCode::NO_CONTENT {
            return Some(Value::Null);
        }
        if !status.is_success() {
            self.tally.unexpected.lock().unwrap().push((status.as_u16(), text));
            return None;
        }
        let body: Value = serde_json::from_str(&text).expect("2xx bodies are JSON");
        self.journal.record(body.get("operation").unwrap_or(&body));
        self.tally.acked.fetch_add(1, Ordering::SeqCst);
        Some(body)
    }
}

/// A `longrun serve` under load, as `serve_under_load` leaves it.
pub struct Loaded {
    /// The server.
    pub server: crate::helpers::ServeProcess,
    /// An admin key's secret.
    pub key: String,
    /// The load.
    pub load: Load,
    /// Its writers, running.
    pub writers: Vec<tokio::task::JoinHandle<()>>,
}

/// Starts `longrun serve` in `dir` and `writers` writers against it; returns
/// once writes on at least `operations` operations are acknowledged.
pub async fn serve_under_load(dir: &std::path::Path, writers: usize, operations: usize) -> Loaded {
    let server = crate::helpers::ServeProcess::start(dir, &[]);
    let key = crate::helpers::cli_key(dir, &[], "*", "admin");
    let load = Load::new(&server.address, &key, Journal::default());
    let writers = load.start(writers);
    while load.journal.len() < operations {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Loaded { server, key, load, writers }
}

/// What reading the journal back found, one line per problem.
#[derive(Debug, Default)]
pub struct Findings {
    /// Acknowledged writes missing: the operation gone, rolled back to an
    /// older version, or another state at the acknowledged version.
    pub lost: Vec<String>,
    /// Operations in a state no sequence of allowed transitions produces.
    pub impossible: Vec<String>,
}

impl Findings {
    /// Nothing lost, nothing impossible.
    pub fn is_clean(&self) -> bool {
        self.lost.is_empty() && self.impossible.is_empty()
    }
}

/// Reads every journaled operation back from `address`.
pub async fn check(address: &str, key: &str, acked: &HashMap<String, Ack>) -> Findings {
    let client = reqwest::Client::new();
    let mut findings = Findings::default();
    let ids: Vec<&String> = acked.keys().collect();
    for chunk in ids.chunks(32) {
        let reads = chunk.iter().map(|id| {
            let request = client.get(format!("{address}/v1/operations/{id}")).bearer_auth(key).send();
            async move { (id, request.await) }
        });
        for (id, response) in futures_util::future::join_all(reads).await {
            let response = response.expect("the server answers reads");
            if response.status() == StatusCode::NOT_FOUND {
                findings.lost.push(format!("{id}: lost (acknowledged at version {})", acked[*id].version));
                continue;
            }
            assert_eq!(response.status(), StatusCode::OK, "{id}");
            let op: Value = response.json().await.unwrap();
            let ack = &acked[*id];
            let version = op["version"].as_i64().unwrap();
            if version < ack.version {
                findings.lost.push(format!("{id}: rolled back from version {} to {version}", ack.version));
            } else if version == ack.version && op["state"] != ack.state.as_str() {
                findings.lost.push(format!("{id}: version {version} was {} and now reads {}", ack.state, op["state"]));
            }
            findings.impossible.extend(impossible(&op).into_iter().map(|why| format!("{id}: {why}: {op}")));
        }
    }
    findings
}

/// What no sequence of allowed transitions can produce.
pub fn impossible(op: &Value) -> Vec<&'static str> {
    let time = |field: &str| op[field].as_str().map(|t| Timestamp::parse_rfc3339(t).expect("RFC 3339"));
    let state = op["state"].as_str().unwrap();
    let terminal = matches!(state, "Succeeded" | "Failed" | "Canceled" | "CompleteWithErrors");
    let mut why = Vec::new();
    if terminal != time("finishedAt").is_some() {
        why.push("finishedAt is set exactly when the state is terminal");
    }
    if let (Some(started), Some(finished)) = (time("startedAt"), time("finishedAt"))
        && finished < started
    {
        why.push("finished before it started");
    }
    if state == "Running" && time("startedAt").is_none() {
        why.push("Running without startedAt");
    }
    if state == "Failed" && op["error"].is_null() {
        why.push("Failed without an error");
    }
    if time("lastActionAt") < time("createdAt") {
        why.push("last action before creation");
    }
    if op["percentComplete"].as_f64().is_some_and(|p| !(0.0..=100.0).contains(&p)) {
        why.push("percentComplete out of 0..=100");
    }
    why
}

/// Invariants only the database shows, read from the file (safe while a
/// server runs: a WAL reader sees a consistent snapshot). Every row: a lease
/// only on a Running operation and with an expiry; a leased-kind operation
/// Running only under a lease; the change log holding every version.
pub fn check_file(db: &std::path::Path) -> Vec<String> {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let rules = [
        ("a lease on an operation that is not Running", "lease_owner IS NOT NULL AND state <> 'Running'"),
        ("a lease without an expiry", "(lease_owner IS NULL) <> (lease_expires_at IS NULL)"),
        (
            "Running with a lease-based start but no lease",
            "kind = 'loadLeased' AND state = 'Running' AND lease_owner IS NULL",
        ),
        (
            "a version the change log never recorded",
            "version <> (SELECT max(version) FROM changes WHERE changes.operation_id = operations.id)",
        ),
    ];
    let mut problems = Vec::new();
    for (why, condition) in rules {
        let sql = format!("SELECT id FROM operations WHERE {condition}");
        let mut stmt = conn.prepare(&sql).unwrap();
        let ids: Vec<String> = stmt.query_map([], |row| row.get(0)).unwrap().map(Result::unwrap).collect();
        problems.extend(ids.into_iter().map(|id| format!("{id}: {why}")));
    }
    problems
}
