//! Starting a server per test, and a few request shorthands.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use longrun::model::{KeyScope, Retention, Role};
use longrun::server::application::{Application, Parts, SHUTDOWN_GRACE};
use longrun::service::auth::jwt::Tokens;
use longrun::service::auth::keys;
use longrun::service::operations::{self, Policy};
use longrun::store::{self, Store};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// What the test servers keep: finished operations a week, failures 30 days.
pub const RETENTION: Retention =
    Retention { finished: Duration::from_secs(7 * 86_400), failed: Duration::from_secs(30 * 86_400) };

/// Seconds the test servers advertise in `Retry-After`.
pub const RETRY_AFTER: u32 = 2;

/// A running server and what tests need to talk to it.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// A plain HTTP client.
    pub client: reqwest::Client,
    /// A `*`-scoped admin key's secret.
    pub admin_key: String,
    /// The store the server uses (tests drive background steps on it).
    pub store: Arc<dyn Store>,
    /// The server's policy; `policy.clock.advance(…)` moves its time.
    pub policy: Arc<Policy>,
    /// Its data directory.
    pub data_dir: PathBuf,
    _owned_dir: Option<TempDir>,
    shutdown: oneshot::Sender<()>,
    server: JoinHandle<std::io::Result<()>>,
}

impl TestApp {
    /// A server on a fresh temporary data dir.
    pub async fn spawn() -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().to_owned();
        let mut app = TestApp::spawn_in(&path).await;
        app._owned_dir = Some(dir);
        app
    }

    /// A server on an existing data dir (for restart tests).
    pub async fn spawn_in(data_dir: &Path) -> TestApp {
        let store = store::open_data_dir(data_dir).expect("open store");
        TestApp::spawn_on(store, data_dir).await
    }

    /// A server on a fresh temporary data dir with its own policy.
    pub async fn spawn_with(policy: Policy) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store::open_data_dir(dir.path()).expect("open store");
        let mut app = TestApp::spawn_on_with(store, dir.path(), policy, Tokens::none()).await;
        app._owned_dir = Some(dir);
        app
    }

    /// A server on a fresh temporary data dir that trusts `tokens`' issuers.
    pub async fn spawn_trusting(tokens: Tokens) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store::open_data_dir(dir.path()).expect("open store");
        let mut app = TestApp::spawn_on_with(store, dir.path(), Policy::new(RETENTION), tokens).await;
        app._owned_dir = Some(dir);
        app
    }

    /// A server on a store the test opened itself (e.g. PostgreSQL).
    pub async fn spawn_on(store: Arc<dyn Store>, data_dir: &Path) -> TestApp {
        TestApp::spawn_on_with(store, data_dir, Policy::new(RETENTION), Tokens::none()).await
    }

    /// A server on a fresh temporary data dir, not in demo mode (every
    /// other spawn is, as `serve --demo`).
    pub async fn spawn_without_demo() -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store::open_data_dir(dir.path()).expect("open store");
        let mut app = TestApp::start(store, dir.path(), Policy::new(RETENTION), Tokens::none(), false).await;
        app._owned_dir = Some(dir);
        app
    }

    async fn spawn_on_with(store: Arc<dyn Store>, data_dir: &Path, policy: Policy, tokens: Tokens) -> TestApp {
        TestApp::start(store, data_dir, policy, tokens, true).await
    }

    async fn start(store: Arc<dyn Store>, data_dir: &Path, policy: Policy, tokens: Tokens, demo: bool) -> TestApp {
        let policy = Arc::new(policy);
        let (_, admin_key) =
            keys::create(store.as_ref(), KeyScope::All, Role::Admin, None, operations::now()).await.expect("admin key");
        let parts = Parts {
            store: store.clone(),
            policy: policy.clone(),
            tokens,
            retry_after: RETRY_AFTER,
            demo,
            limits: Default::default(),
            grace: SHUTDOWN_GRACE,
            tls: None,
            grpc_listen: None,
        };
        let node = Application::bind("127.0.0.1:0".parse().unwrap(), parts).await.expect("bind");
        let address = format!("http://{}", node.address().unwrap());
        let (shutdown, stop) = oneshot::channel::<()>();
        let server = tokio::spawn(node.run_until(async move {
            let _ = stop.await;
        }));
        TestApp {
            address,
            client: reqwest::Client::new(),
            admin_key,
            store,
            policy,
            data_dir: data_dir.to_owned(),
            _owned_dir: None,
            shutdown,
            server,
        }
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(self) -> PathBuf {
        let _ = self.shutdown.send(());
        self.server.await.expect("server task").expect("server result");
        self.data_dir
    }

    /// A fresh key's secret.
    pub async fn key(&self, scope: &str, role: Role) -> String {
        let scope = KeyScope::parse(scope).unwrap();
        keys::create(self.store.as_ref(), scope, role, None, operations::now()).await.unwrap().1
    }

    /// Runs the script runner as if `seconds` had passed.
    pub async fn run_scripts_after(&self, seconds: u64) {
        let later = self.policy.clock.now().plus(std::time::Duration::from_secs(seconds));
        longrun::worker::runner::run_scripts_once(self.store.as_ref(), &self.policy, later).await.unwrap();
    }

    /// `GET {address}{path}` with a bearer key.
    pub async fn get_bearer(&self, path: &str, key: &str) -> Response {
        self.client.get(format!("{}{path}", self.address)).bearer_auth(key).send().await.unwrap()
    }

    /// `POST /v1/operations` as the admin.
    pub async fn create(&self, body: Value) -> Response {
        self.create_as(&self.admin_key.clone(), body).await
    }

    /// `POST /v1/operations` with `key`.
    pub async fn create_as(&self, key: &str, body: Value) -> Response {
        let url = format!("{}/v1/operations", self.address);
        self.client.post(url).bearer_auth(key).json(&body).send().await.unwrap()
    }

    /// Creates an operation and returns its native JSON (asserting 201).
    pub async fn create_ok(&self, scope: &str, kind: &str) -> Value {
        let response = self.create(json!({"scope": scope, "kind": kind})).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }

    /// `PATCH /v1/operations/{id}` as the admin.
    pub async fn patch(&self, id: &str, body: Value) -> Response {
        let url = format!("{}/v1/operations/{id}", self.address);
        self.client.patch(url).bearer_auth(&self.admin_key).json(&body).send().await.unwrap()
    }

    /// PATCH that must succeed; returns the new native JSON.
    pub async fn patch_ok(&self, id: &str, body: Value) -> Value {
        let response = self.patch(id, body).await;
        assert_eq!(response.status(), StatusCode::OK, "{:?}", response.text().await);
        response.json().await.unwrap()
    }
}

/// The id of a native operation JSON.
pub fn id_of(op: &Value) -> String {
    op["id"].as_str().unwrap().to_owned()
}

/// Asserts `value` is an RFC 3339 UTC string with `digits` fractional digits.
pub fn assert_timestamp(value: &Value, digits: usize) {
    let text = value.as_str().unwrap_or_else(|| panic!("not a string: {value}"));
    let (whole, fraction) = text.split_once('.').unwrap_or_else(|| panic!("no fraction: {text}"));
    assert_eq!(whole.len(), 19, "{text}");
    assert!(longrun::model::Timestamp::parse_rfc3339(text).is_some(), "{text}");
    assert_eq!(fraction.len(), digits + 1, "{text}");
    assert!(fraction.ends_with('Z') && fraction[..digits].chars().all(|c| c.is_ascii_digit()), "{text}");
}

/// The sorted member names of a JSON object.
pub fn keys_of(value: &Value) -> Vec<String> {
    let mut names: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    names.sort();
    names
}

/// A random UUID no test ever created.
pub fn unknown_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A fresh tenant id.
pub fn tenant() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The PostgreSQL server tests may use, or `None` with a printed SKIPPED.
pub fn postgres_url(test: &str) -> Option<String> {
    let url = std::env::var("LONGRUN_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty());
    if url.is_none() {
        eprintln!("SKIPPED {test}: LONGRUN_TEST_POSTGRES_URL is unset");
    }
    url
}

/// A `longrun serve` child process, killed when dropped.
pub struct ServeProcess {
    /// The child.
    pub child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// What it printed before it listened.
    pub printed: Vec<String>,
}

impl ServeProcess {
    /// Runs the real binary with `args` (plus `--listen 127.0.0.1:0`) in
    /// `dir`, and waits for its "listening on" line.
    pub fn start(dir: &Path, args: &[&str]) -> ServeProcess {
        use std::io::{BufRead, BufReader};
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_longrun"))
            .arg("serve")
            .args(args)
            .current_dir(dir)
            .env("LONGRUN_LISTEN", "127.0.0.1:0")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start longrun");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut printed = Vec::new();
        for line in stdout.lines() {
            let line = line.unwrap();
            if let Some(rest) = line.strip_prefix("longrun listening on ") {
                let address = rest.split_whitespace().next().unwrap().to_owned();
                return ServeProcess { child, address, printed };
            }
            printed.push(line);
        }
        let status = child.wait();
        panic!("longrun exited without listening ({status:?}): {printed:?}");
    }
}

impl ServeProcess {
    /// SIGTERM (a graceful stop), then waits for the exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM");
        self.child.wait().expect("wait for longrun")
    }

    /// SIGKILL: no graceful anything.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("wait for longrun");
    }
}

/// Runs the real binary with `args` in `dir` to its end.
pub fn run_longrun(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_longrun")).args(args).current_dir(dir).output().expect("run longrun")
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `POST /v1/operations` on any node; asserts 201 and returns the JSON.
pub async fn create_on(client: &reqwest::Client, node: &str, key: &str, scope: &str, kind: &str) -> Value {
    let response = client
        .post(format!("{node}/v1/operations"))
        .bearer_auth(key)
        .json(&json!({"scope": scope, "kind": kind}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

/// `longrun key create` through the real binary; returns the secret.
pub fn cli_key(dir: &Path, store_args: &[&str], scope: &str, role: &str) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_longrun"))
        .args(["key", "create", "--scope", scope, "--role", role])
        .args(store_args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Asserts a revoked credential is refused (401) within about a second:
/// PostgreSQL nodes reuse a key lookup for up to a second.
pub async fn refused_within_a_second(status: impl AsyncFn() -> StatusCode) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(1500);
    loop {
        let now = status().await;
        if now == StatusCode::UNAUTHORIZED {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "still {now} long after the revocation");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A response as a comparable string: status, headers but the per-request
/// ones, and the body with `ids` replaced.
pub async fn normalized(response: reqwest::Response, ids: &[&str]) -> String {
    let mut text = format!("{}\n", response.status());
    for (name, value) in response.headers() {
        if !matches!(name.as_str(), "x-ms-request-id" | "date" | "x-request-id") {
            text.push_str(&format!("{name}: {}\n", value.to_str().unwrap()));
        }
    }
    let mut body = response.text().await.unwrap();
    for id in ids {
        body = body.replace(id, "ID");
    }
    text + &body
}

/// Returns once the node at `address` holds a long-poll (its
/// `longrun_waiting_operations` gauge is above 0): a change made after this
/// reaches the waiter through its wake-up, not through its first read.
pub async fn until_a_long_poll_waits(client: &reqwest::Client, address: &str) {
    until_gauge_is_positive(client, address, "longrun_waiting_operations").await;
}

/// Returns once the node at `address` holds a waiting lease claim (its
/// `longrun_waiting_claims` gauge is above 0).
pub async fn until_a_claim_waits(client: &reqwest::Client, address: &str) {
    until_gauge_is_positive(client, address, "longrun_waiting_claims").await;
}

async fn until_gauge_is_positive(client: &reqwest::Client, address: &str, gauge: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let prefix = format!("{gauge} ");
    loop {
        let metrics = client.get(format!("{address}/metrics")).send().await.unwrap().text().await.unwrap();
        let value =
            metrics.lines().find_map(|line| line.strip_prefix(&prefix)).and_then(|n| n.trim().parse::<f64>().ok());
        if value.is_some_and(|n| n > 0.0) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{gauge} stayed at 0 on {address}");
        tokio::task::yield_now().await;
    }
}
