//! A PostgreSQL primary failover under load: two longrun nodes on a real
//! pg_auto_failover formation (a monitor and two data nodes, synchronous
//! replication, in a temporary directory) keep every acknowledged write,
//! answer only 2xx, legitimate 409/412 and 503 with Retry-After while the
//! standby is promoted, serve again by themselves, resume a scope's event
//! stream without a gap, and keep a lease held across it.

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::events::Events;
use crate::helpers::{TestApp, id_of, postgres_url};

const SCOPE: &str = "projects/failover";
const WORKERS: usize = 6;

/// A monitor and two data nodes, each supervised by its own `pg_autoctl`.
struct Formation {
    dir: tempfile::TempDir,
    bin: PathBuf,
    monitor_port: u16,
    node_ports: [u16; 2],
    /// The `runuser … pg_autoctl` processes, each leading its process group.
    keepers: Vec<Child>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Formation {
    /// Needs root (to run as `postgres`), `pg_autoctl` and its extension.
    fn can_run() -> Option<PathBuf> {
        let uid = Command::new("id").arg("-u").output().ok()?;
        let autoctl = Command::new("pg_autoctl").arg("version").output().ok()?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" || !autoctl.status.success() {
            return None;
        }
        let versions = std::fs::read_dir("/usr/share/postgresql").ok()?.flatten();
        let major = versions.map(|e| e.path()).find(|v| v.join("extension/pgautofailover.control").exists())?;
        Some(PathBuf::from("/usr/lib/postgresql").join(major.file_name()?).join("bin"))
    }

    /// A formation with a primary and a synchronous secondary, tuned to
    /// notice a dead primary within a few seconds.
    async fn start(bin: PathBuf) -> Formation {
        let dir = tempfile::tempdir().unwrap();
        assert!(Command::new("chown").args(["-R", "postgres"]).arg(dir.path()).status().unwrap().success());
        let mut formation =
            Formation { dir, bin, monitor_port: free_port(), node_ports: [free_port(), free_port()], keepers: vec![] };
        let monitor_port = formation.monitor_port.to_string();
        formation.keep("monitor", &["create", "monitor", "--pgport", &monitor_port]);
        let monitor = formation.until_connected(formation.monitor_port, "pg_auto_failover").await;
        for setting in [
            "health_check_period = 1000",
            "health_check_timeout = 1000",
            "health_check_max_retries = 1",
            "health_check_retry_delay = 500",
            "node_considered_unhealthy_timeout = 2000",
            "primary_demote_timeout = 3000",
        ] {
            monitor.execute(&format!("ALTER SYSTEM SET pgautofailover.{setting}"), &[]).await.unwrap();
        }
        monitor.execute("SELECT pg_reload_conf()", &[]).await.unwrap();
        formation.add_node(0).await;
        formation.until_states(&["single"]).await;
        // The standby's base backup waits for a checkpoint: an immediate one.
        let first = formation.until_connected(formation.node_ports[0], "longrun").await;
        first.execute("ALTER SYSTEM SET checkpoint_completion_target = 0", &[]).await.unwrap();
        first.execute("SELECT pg_reload_conf()", &[]).await.unwrap();
        formation.add_node(1).await;
        formation.until_states(&["primary", "secondary"]).await;
        formation
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// Starts `pg_autoctl ARGS --run` for `name` (its PGDATA) as `postgres`.
    fn keep(&mut self, name: &str, args: &[&str]) {
        let log = std::fs::File::create(self.dir.path().join(format!("{name}.log"))).unwrap();
        let child = Command::new("runuser")
            .args(["-u", "postgres", "--", "env"])
            .arg(format!("XDG_CONFIG_HOME={}", self.path("config")))
            .arg(format!("XDG_DATA_HOME={}", self.path("share")))
            .arg("PGHOST=127.0.0.1")
            .arg(format!("PATH={}:/usr/bin:/bin", self.bin.display()))
            .arg("pg_autoctl")
            .args(args)
            .args(["--pgdata", &self.path(name), "--hostname", "127.0.0.1", "--auth", "trust", "--no-ssl", "--run"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("runuser pg_autoctl");
        self.keepers.push(child);
    }

    async fn add_node(&mut self, index: usize) {
        let monitor =
            format!("postgres://autoctl_node@127.0.0.1:{}/pg_auto_failover?sslmode=disable", self.monitor_port);
        let port = self.node_ports[index].to_string();
        let args = ["create", "postgres", "--pgport", &port, "--pghost", "127.0.0.1", "--dbname", "longrun"];
        self.keep(&format!("node{index}"), &[&args[..], &["--monitor", &monitor]].concat());
    }

    async fn until_connected(&self, port: u16, db: &str) -> tokio_postgres::Client {
        let url = format!("postgres://postgres@127.0.0.1:{port}/{db}");
        let give_up = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok((client, connection)) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
                tokio::spawn(connection);
                return client;
            }
            assert!(Instant::now() < give_up, "no PostgreSQL on port {port} within 60 s:\n{}", self.logs());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Each data node's (port, reported state, goal state), per the monitor.
    async fn states(&self) -> Vec<(u16, String, String)> {
        let url = format!("postgres://autoctl_node@127.0.0.1:{}/pg_auto_failover", self.monitor_port);
        let Ok((client, connection)) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await else {
            return vec![];
        };
        tokio::spawn(connection);
        let sql = "SELECT nodeport, reportedstate::text, goalstate::text FROM pgautofailover.node ORDER BY nodeid";
        let rows = client.query(sql, &[]).await.unwrap_or_default();
        rows.iter().map(|r| (r.get::<_, i32>(0) as u16, r.get(1), r.get(2))).collect()
    }

    /// Waits (up to 60 s) until the nodes report exactly `wanted`, in order.
    async fn until_states(&self, wanted: &[&str]) {
        let give_up = Instant::now() + Duration::from_secs(60);
        loop {
            let states = self.states().await;
            if states.iter().map(|s| s.1.as_str()).eq(wanted.iter().copied()) {
                return;
            }
            assert!(Instant::now() < give_up, "states {states:?}, not {wanted:?}, after 60 s:\n{}", self.logs());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The primary's index among the data nodes.
    async fn primary(&self) -> usize {
        let states = self.states().await;
        let port = states.iter().find(|s| s.1 == "primary").expect("a primary").0;
        self.node_ports.iter().position(|p| *p == port).unwrap()
    }

    /// The multi-host URL a longrun node is given.
    fn url(&self) -> String {
        let [a, b] = self.node_ports;
        format!("postgres://postgres@127.0.0.1:{a},127.0.0.1:{b}/longrun?target_session_attrs=read-write")
    }

    /// SIGKILL to the data node's keeper and to its postmaster: the
    /// machine is gone, as far as the formation can tell.
    fn kill_node(&mut self, index: usize) {
        let keeper = &self.keepers[index + 1];
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", keeper.id())]).status();
        self.kill_postmaster(&format!("node{index}"));
    }

    fn kill_postmaster(&self, name: &str) {
        let pid_file = self.dir.path().join(name).join("postmaster.pid");
        if let Some(pid) = std::fs::read_to_string(pid_file).ok().and_then(|s| s.lines().next().map(str::to_owned)) {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
        }
    }

    fn logs(&self) -> String {
        ["monitor", "node0", "node1"]
            .iter()
            .map(|name| {
                let log = std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                format!("--- {name}.log (last lines)\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Formation {
    fn drop(&mut self) {
        for keeper in &self.keepers {
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", keeper.id())]).status();
        }
        for keeper in &mut self.keepers {
            let _ = keeper.wait();
        }
        for name in ["node0", "node1", "monitor"] {
            self.kill_postmaster(name);
        }
    }
}

/// One answer under load.
struct Answer {
    at: Duration,
    node: usize,
    what: &'static str,
    status: u16,
    retry_after: bool,
}

/// What the load saw acknowledged: each operation's highest acknowledged
/// version, and when each write was sent.
#[derive(Default)]
struct Acknowledged {
    versions: HashMap<String, i64>,
    /// (operation, sent at) of every acknowledged write.
    writes: Vec<(String, Duration)>,
    /// The operation each repeatable create's request id landed as.
    landed: HashMap<String, String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_failover_loses_nothing_acknowledged_and_costs_only_503s() {
    const TEST: &str = "a_primary_failover_loses_nothing_acknowledged_and_costs_only_503s";
    if postgres_url(TEST).is_none() {
        return;
    }
    let Some(bin) = Formation::can_run() else {
        eprintln!("SKIPPED {TEST}: needs root and pg_auto_failover (Debian: postgresql-15-auto-failover)");
        return;
    };
    let setup = Instant::now();
    let mut formation = Formation::start(bin).await;
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut nodes = Vec::new();
    for dir in &dirs {
        let store = longrun::store::open(Some(&formation.url()), dir.path(), 8).await.unwrap();
        nodes.push(TestApp::spawn_on(store, dir.path()).await);
    }
    let nodes = Arc::new(nodes);
    eprintln!("formation and two longrun nodes ready in {:.1}s", setup.elapsed().as_secs_f64());

    // A lease claimed before the failover, held across it.
    let seeded = id_of(&nodes[0].create_ok(SCOPE, "failoverLease").await);
    let claimed = nodes[0]
        .client
        .post(format!("{}/v1/leases", nodes[0].address))
        .bearer_auth(&nodes[0].admin_key)
        .json(&json!({"kinds": ["failoverLease"], "ttl": "60s"}))
        .send()
        .await
        .unwrap();
    assert_eq!(claimed.status(), StatusCode::CREATED);
    let lease: Value = claimed.json().await.unwrap();
    assert_eq!(lease["operation"]["id"], seeded);

    // The position the event stream resumes from: a change seen before the kill.
    let mut before = Events::open(&nodes[1], &format!("/v1/events?scope={SCOPE}"), None).await;
    let marker = id_of(&nodes[0].create_ok(SCOPE, "marker").await);
    let (resume_from, seen) = before.next().await;
    assert_eq!(id_of(&seen), marker);
    drop(before);

    let started = Instant::now();
    let answers: Arc<Mutex<Vec<Answer>>> = Arc::default();
    let acknowledged: Arc<Mutex<Acknowledged>> = Arc::default();
    let stop_load = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for worker in 0..WORKERS {
        let (nodes, answers, acknowledged, stop_load) =
            (nodes.clone(), answers.clone(), acknowledged.clone(), stop_load.clone());
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::builder().timeout(Duration::from_secs(15)).build().unwrap();
            let mut mine: Vec<String> = Vec::new();
            // A repeatable create's request id and first-sent date, retried
            // (through either node) until it lands, as a client would.
            let mut retrying: Option<(String, String)> = None;
            let mut since_create = 0;
            for n in 0usize.. {
                if stop_load.load(std::sync::atomic::Ordering::SeqCst) && retrying.is_none() {
                    break;
                }
                let node = &nodes[(worker + n) % 2];
                let sent = started.elapsed();
                // Per cycle: a create, three PATCHes of it, a long-poll (1 s).
                let step = if retrying.is_some() || mine.is_empty() { 0 } else { since_create % 5 };
                let (what, request) = match (step, mine.last()) {
                    (1..=3, Some(id)) => (
                        "patch",
                        client
                            .patch(format!("{}/v1/operations/{id}", node.address))
                            .json(&json!({"properties": {"n": n}})),
                    ),
                    (4, Some(id)) => {
                        ("long-poll", client.get(format!("{}/v1/operations/{id}:wait?timeout=1s", node.address)))
                    }
                    _ => {
                        let (request_id, first_sent) = retrying.get_or_insert_with(|| {
                            (format!("failover-{worker}-{n}"), httpdate::fmt_http_date(std::time::SystemTime::now()))
                        });
                        let create = client
                            .post(format!("{}/v1/operations", node.address))
                            .header("repeatability-request-id", request_id.as_str())
                            .header("repeatability-first-sent", first_sent.as_str())
                            .json(&json!({"scope": SCOPE, "kind": "deleteDevBox"}));
                        ("create", create)
                    }
                };
                let response = request.bearer_auth(&node.admin_key).send().await.expect("no hang past 15 s");
                let status = response.status();
                let retry_after = response.headers().contains_key("retry-after");
                let version =
                    response.headers().get("etag").and_then(|v| v.to_str().ok()?.trim_matches('"').parse::<i64>().ok());
                answers.lock().unwrap().push(Answer {
                    at: started.elapsed(),
                    node: (worker + n) % 2,
                    what,
                    status: status.as_u16(),
                    retry_after,
                });
                if status.is_success() && what != "long-poll" {
                    let body: Value = response.json().await.unwrap();
                    let id = id_of(&body);
                    let mut acked = acknowledged.lock().unwrap();
                    let version = version.expect("a write's answer carries its ETag");
                    let highest = acked.versions.entry(id.clone()).or_default();
                    *highest = (*highest).max(version);
                    acked.writes.push((id.clone(), sent));
                    if what == "create" {
                        let (request_id, _) = retrying.take().expect("a create has a request id");
                        acked.landed.insert(request_id, id.clone());
                        mine.push(id);
                        since_create = 0;
                    }
                }
                if what != "create" || retrying.is_none() {
                    since_create += 1;
                }
                if !status.is_success() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }));
    }

    // Readiness, as a load balancer would probe it.
    let readiness: Arc<Mutex<Vec<u16>>> = Arc::default();
    let probe = {
        let (nodes, readiness, stop_load) = (nodes.clone(), readiness.clone(), stop_load.clone());
        tokio::spawn(async move {
            while !stop_load.load(std::sync::atomic::Ordering::SeqCst) {
                let ready = nodes[0].client.get(format!("{}/readyz", nodes[0].address)).send().await.unwrap();
                readiness.lock().unwrap().push(ready.status().as_u16());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    tokio::time::sleep(Duration::from_secs(1)).await;
    let primary = formation.primary().await;
    let killed_at = started.elapsed();
    formation.kill_node(primary);
    let give_up = Instant::now() + Duration::from_secs(60);
    while !formation.states().await.iter().any(|s| s.0 == formation.node_ports[1 - primary] && s.1 == "wait_primary") {
        assert!(Instant::now() < give_up, "no promotion within 60 s:\n{}", formation.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let promoted_at = started.elapsed();

    // Full service: a create and a GET answered 2xx on both nodes.
    let give_up = Instant::now() + Duration::from_secs(15);
    'service: loop {
        let mut all = true;
        for node in nodes.iter() {
            let created = node.create(json!({"scope": SCOPE, "kind": "serviceCheck"})).await;
            all &= created.status() == StatusCode::CREATED
                && node.get_bearer(&format!("/v1/operations/{seeded}"), &node.admin_key).await.status()
                    == StatusCode::OK;
        }
        if all {
            break 'service;
        }
        assert!(Instant::now() < give_up, "no full service within 15 s of the promotion");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let served_at = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop_load.store(true, std::sync::atomic::Ordering::SeqCst);
    for worker in workers {
        worker.await.unwrap();
    }
    probe.await.unwrap();
    let readiness = std::mem::take(&mut *readiness.lock().unwrap());
    assert!(readiness.contains(&503), "/readyz said not ready without a primary: {readiness:?}");
    assert_eq!(readiness.last(), Some(&200), "and ready again after");

    let answers = std::mem::take(&mut *answers.lock().unwrap());
    let acknowledged = std::mem::take(&mut *acknowledged.lock().unwrap());
    let count = |f: &dyn Fn(&Answer) -> bool| answers.iter().filter(|a| f(a)).count();
    let unavailable: Vec<Duration> = answers.iter().filter(|a| a.status == 503).map(|a| a.at).collect();
    let window = match (unavailable.iter().min(), unavailable.iter().max()) {
        (Some(first), Some(last)) => last.as_secs_f64() - first.as_secs_f64(),
        _ => 0.0,
    };
    eprintln!(
        "killed the primary at {:.1}s, standby promoted {:.1}s later, full service {:.1}s after that; \
         {} answers: {} × 2xx ({} after the promotion; {} writes acknowledged, {} repeatable creates), \
         {} × 503 over {window:.1}s, {} other",
        killed_at.as_secs_f64(),
        (promoted_at - killed_at).as_secs_f64(),
        (served_at - promoted_at).as_secs_f64(),
        answers.len(),
        count(&|a| (200..300).contains(&a.status)),
        count(&|a| (200..300).contains(&a.status) && a.at > promoted_at),
        acknowledged.writes.len(),
        acknowledged.landed.len(),
        unavailable.len(),
        count(&|a| !(200..300).contains(&a.status) && a.status != 503),
    );
    for a in answers.iter() {
        let legitimate = (200..300).contains(&a.status) || a.status == 409 || a.status == 412;
        assert!(
            legitimate || (a.status == 503 && a.retry_after),
            "{} on node {} at {:?}: {}",
            a.what,
            a.node,
            a.at,
            a.status
        );
    }
    assert!(!unavailable.is_empty(), "the failover was noticed");

    // Every acknowledged write is there, at its acknowledged version or later.
    for (id, version) in &acknowledged.versions {
        let op = nodes[0].get_bearer(&format!("/v1/operations/{id}"), &nodes[0].admin_key).await;
        assert_eq!(op.status(), StatusCode::OK, "acknowledged operation {id} lost");
        let stored: i64 = op.headers()["etag"].to_str().unwrap().trim_matches('"').parse().unwrap();
        assert!(stored >= *version, "{id}: acknowledged version {version}, now {stored}");
    }

    // Each repeatable create landed exactly once, as the operation its
    // request id was answered with.
    let filter = longrun::store::ListFilter {
        scope: Some(longrun::model::Scope::parse(SCOPE).unwrap()),
        state: None,
        kind: Some(longrun::model::Kind::parse("deleteDevBox").unwrap()),
        limit: 100_000,
        ..Default::default()
    };
    let mut stored: Vec<String> =
        nodes[0].store.list_operations(&filter).await.unwrap().iter().map(|op| op.id.to_string()).collect();
    stored.sort();
    let mut landed: Vec<String> = acknowledged.landed.values().cloned().collect();
    landed.sort();
    assert_eq!(stored, landed, "one operation per request id, the one it was answered with");

    // Each node's change feed follows the new primary: a change made
    // through one node wakes a long-poll on the other (well before the
    // long-poll's own 20 s timeout would answer it).
    let watched = id_of(&nodes[0].create_ok(SCOPE, "watched").await);
    let url = format!("{}/v1/operations/{watched}:wait?timeout=20s", nodes[1].address);
    let waiting = nodes[1].client.get(url).bearer_auth(&nodes[1].admin_key).header("if-none-match", "\"1\"").send();
    let waiting = tokio::spawn(waiting);
    crate::helpers::until_a_long_poll_waits(&nodes[1].client, &nodes[1].address).await;
    let asked = Instant::now();
    let patched = nodes[0]
        .client
        .patch(format!("{}/v1/operations/{watched}", nodes[0].address))
        .bearer_auth(&nodes[0].admin_key)
        .json(&json!({"state": "Running"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), StatusCode::OK);
    let woken = waiting.await.unwrap().unwrap();
    assert_eq!(woken.headers()["etag"], "\"2\"");
    assert!(asked.elapsed() < Duration::from_secs(10), "woken by the change, not by the timeout");

    // The lease outlived the failover: still valid, and it completes.
    let lease_id = lease["leaseId"].as_str().unwrap();
    let lease_url = |action: &str| format!("{}/v1/leases/{lease_id}:{action}", nodes[1].address);
    let beat = nodes[1].client.post(lease_url("heartbeat")).bearer_auth(&nodes[1].admin_key).json(&json!({})).send();
    assert_eq!(beat.await.unwrap().status(), StatusCode::OK, "the lease held across the failover is valid");
    let done = json!({"state": "Succeeded"});
    let completed = nodes[1].client.post(lease_url("complete")).bearer_auth(&nodes[1].admin_key).json(&done).send();
    assert_eq!(completed.await.unwrap().status(), StatusCode::OK);

    // The scope's stream, resumed after the failover from a change seen
    // before it, has every write sent after that change was seen.
    let mut resumed = Events::open(&nodes[0], &format!("/v1/events?scope={SCOPE}"), Some(&resume_from)).await;
    let mut expected: HashMap<&str, usize> = HashMap::new();
    for (id, _) in acknowledged.writes.iter() {
        *expected.entry(id.as_str()).or_default() += 1;
    }
    let mut heard: HashMap<String, usize> = HashMap::new();
    let mut last_position: i64 = resume_from.parse().unwrap();
    while expected.iter().any(|(id, n)| heard.get(*id).copied().unwrap_or_default() < *n) {
        let (position, op) = resumed.next().await;
        let position: i64 = position.parse().unwrap();
        assert!(position > last_position, "events in log order");
        last_position = position;
        *heard.entry(id_of(&op)).or_default() += 1;
    }
}
