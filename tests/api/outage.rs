//! A PostgreSQL outage under load: requests get 503 with Retry-After (never
//! 500, never a hang) while the database is away, and the node serves again
//! by itself once it is back, and a repeatable create cut off by it lands
//! exactly once when retried. Runs on a private PostgreSQL instance (initdb
//! in a temporary dir, its own port) so stopping it disturbs no other test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{TestApp, id_of, postgres_url};

/// A throwaway PostgreSQL cluster, run as the `postgres` user.
struct PrivatePostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl PrivatePostgres {
    /// Needs root (to run as `postgres`) and the server binaries.
    fn create() -> Option<PrivatePostgres> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .flatten()
            .map(|e| e.path().join("bin"))
            .find(|b| b.join("initdb").exists())?;
        let uid = Command::new("id").arg("-u").output().ok()?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            return None;
        }
        let dir = tempfile::tempdir().ok()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        assert!(Command::new("chown").args(["-R", "postgres"]).arg(dir.path()).status().ok()?.success());
        let cluster = PrivatePostgres { bin, dir, port };
        cluster.run("initdb", &["-D", &cluster.data(), "-A", "trust", "-U", "postgres", "--no-sync"]);
        Some(cluster)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let output = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(tool))
            .args(args)
            .output()
            .expect("runuser");
        let log = std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default();
        assert!(output.status.success(), "{tool} {args:?}: {output:?}\nserver log:\n{log}");
    }

    fn start(&self) {
        let options =
            format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.dir.path().display());
        let log = self.dir.path().join("log").display().to_string();
        self.run("pg_ctl", &["-D", &self.data(), "-o", &options, "-l", &log, "-w", "start"]);
    }

    fn stop(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }

    /// A private cluster for `test`, started; `None` (said) when the test
    /// cannot have one.
    fn started_for(test: &str) -> Option<PrivatePostgres> {
        postgres_url(test)?;
        let Some(pg) = PrivatePostgres::create() else {
            eprintln!("SKIPPED {test}: needs root and PostgreSQL's server binaries");
            return None;
        };
        pg.start();
        Some(pg)
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .output();
    }
}

const WORKERS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_503_and_service_resumes_by_itself() {
    let Some(pg) = PrivatePostgres::started_for("a_database_outage_is_503_and_service_resumes_by_itself") else {
        return;
    };
    let store = longrun::store::open(Some(&pg.url()), pg.path(), 8).await.unwrap();
    let app = Arc::new(TestApp::spawn_on(store, pg.path()).await);
    // One operation per worker: PATCHes racing on one operation can lose
    // their compare-and-swap often enough to get a 503 of their own.
    let mut ids = Vec::new();
    for _ in 0..WORKERS {
        ids.push(id_of(&app.create_ok("projects/outage", "deleteDevBox").await));
    }

    let started = Instant::now();
    let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
    let stop_load = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for (worker, id) in ids.iter().enumerate() {
        let (app, id, samples, stop_load) = (app.clone(), id.clone(), samples.clone(), stop_load.clone());
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
            let mut n = 0u64;
            while !stop_load.load(std::sync::atomic::Ordering::SeqCst) {
                n += 1;
                let request = if n.is_multiple_of(2) {
                    let url = format!("{}/projects/outage/operationstatuses/{id}?api-version=2025-02-01", app.address);
                    client.get(url).bearer_auth(&app.admin_key)
                } else {
                    let url = format!("{}/v1/operations/{id}", app.address);
                    client
                        .patch(url)
                        .bearer_auth(&app.admin_key)
                        .json(&json!({"properties": {format!("w{worker}"): n}}))
                };
                let sent = started.elapsed();
                let response = request.send().await.expect("no hang past the client timeout");
                let status = response.status().as_u16();
                let retry_after = response.headers().contains_key("retry-after");
                samples.lock().unwrap().push(Sample { sent, done: started.elapsed(), status, retry_after });
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }

    tokio::time::sleep(Duration::from_secs(1)).await;
    let outage_began = started.elapsed();
    tokio::task::block_in_place(|| pg.stop());
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::task::block_in_place(|| pg.start());
    let outage_ended = started.elapsed();
    // The load goes on until a whole second after the outage was all 200s (or 10 s).
    let give_up = Instant::now() + Duration::from_secs(10);
    while Instant::now() < give_up && !served_for_a_second_since(&samples.lock().unwrap(), outage_ended) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_load.store(true, std::sync::atomic::Ordering::SeqCst);
    for worker in workers {
        worker.await.unwrap();
    }

    let samples = samples.lock().unwrap();
    let count = |f: &dyn Fn(&Sample) -> bool| samples.iter().filter(|s| f(s)).count();
    let ok = count(&|s| s.status == 200);
    let unavailable = count(&|s| s.status == 503);
    let other = count(&|s| s.status != 200 && s.status != 503);
    let last_503 = samples.iter().filter(|s| s.status == 503).map(|s| s.done).max().unwrap_or_default();
    eprintln!(
        "outage {:.1}s..{:.1}s: {} requests: {ok} × 200, {unavailable} × 503, {other} other; last 503 {:.2}s after the database returned",
        outage_began.as_secs_f64(),
        outage_ended.as_secs_f64(),
        samples.len(),
        last_503.as_secs_f64() - outage_ended.as_secs_f64()
    );
    assert_eq!(
        other,
        0,
        "only 200 and 503: {:?}",
        samples.iter().filter(|s| s.status != 200 && s.status != 503).take(5).collect::<Vec<_>>()
    );
    assert!(unavailable > 0, "the outage was noticed");
    assert!(samples.iter().filter(|s| s.status == 503).all(|s| s.retry_after), "every 503 carries Retry-After");
    let recovered_by = outage_ended + Duration::from_secs(5);
    for sample in samples.iter().filter(|s| s.status == 503) {
        let at = sample.done;
        assert!(at >= outage_began && at <= recovered_by, "503 at {at:?} outside the outage");
    }
    assert!(served_for_a_second_since(&samples, outage_ended), "served again after the outage");
}

/// One request of the load: when it was sent and answered, and how.
#[derive(Debug)]
struct Sample {
    sent: Duration,
    done: Duration,
    status: u16,
    retry_after: bool,
}

/// Whether the requests sent after `since` end in a whole second of
/// nothing but 200s. By when they were sent: one sent during the outage
/// may be answered 503 after it, as late as the 5 s bound on a call.
fn served_for_a_second_since(samples: &[Sample], since: Duration) -> bool {
    let last_failure = samples.iter().filter(|s| s.status != 200).map(|s| s.sent).max().unwrap_or_default().max(since);
    samples.iter().any(|s| s.status == 200 && s.sent > last_failure + Duration::from_secs(1))
}

/// One repeatable create, retried with its request id until it lands.
struct Landed {
    request_id: String,
    /// Every answer, in order: status, and whether it carried Retry-After.
    answers: Vec<(u16, bool)>,
    /// The operation the 2xx named.
    id: Option<String>,
    /// When the 2xx came.
    at: Duration,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeatable_create_cut_off_by_an_outage_lands_exactly_once() {
    let Some(pg) = PrivatePostgres::started_for("a_repeatable_create_cut_off_by_an_outage_lands_exactly_once") else {
        return;
    };
    let store = longrun::store::open(Some(&pg.url()), pg.path(), 8).await.unwrap();
    let app = Arc::new(TestApp::spawn_on(store, pg.path()).await);
    let started = Instant::now();
    let stop_load = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for worker in 0..WORKERS {
        let (app, stop_load) = (app.clone(), stop_load.clone());
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::builder().timeout(Duration::from_secs(15)).build().unwrap();
            let mut landed = Vec::new();
            for n in 0.. {
                if stop_load.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let request_id = format!("outage-{worker}-{n}");
                let first_sent = httpdate::fmt_http_date(std::time::SystemTime::now());
                let mut this = Landed { request_id, answers: Vec::new(), id: None, at: Duration::ZERO };
                // Retried as a client would, for up to 20 s.
                let give_up = Instant::now() + Duration::from_secs(20);
                while this.id.is_none() && Instant::now() < give_up {
                    let response = client
                        .post(format!("{}/v1/operations", app.address))
                        .bearer_auth(&app.admin_key)
                        .header("repeatability-request-id", &this.request_id)
                        .header("repeatability-first-sent", &first_sent)
                        .json(&json!({"scope": "projects/outage-repeat", "kind": "deleteDevBox"}))
                        .send()
                        .await
                        .expect("no hang past the client timeout");
                    let status = response.status().as_u16();
                    this.answers.push((status, response.headers().contains_key("retry-after")));
                    if response.status().is_success() {
                        this.id =
                            Some(response.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().into());
                        this.at = started.elapsed();
                    } else {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                landed.push(this);
            }
            landed
        }));
    }

    tokio::time::sleep(Duration::from_secs(1)).await;
    tokio::task::block_in_place(|| pg.stop());
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::task::block_in_place(|| pg.start());
    let outage_ended = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop_load.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut landed = Vec::new();
    for worker in workers {
        landed.extend(worker.await.unwrap());
    }

    let retried: Vec<&Landed> = landed.iter().filter(|l| l.answers.len() > 1).collect();
    let latest = landed.iter().map(|l| l.at).max().unwrap_or_default();
    eprintln!(
        "{} repeatable creates, {} retried ({} answers: {} × 503, {} × 409); the last landed {:.2}s after the database returned",
        landed.len(),
        retried.len(),
        landed.iter().map(|l| l.answers.len()).sum::<usize>(),
        landed.iter().flat_map(|l| &l.answers).filter(|a| a.0 == 503).count(),
        landed.iter().flat_map(|l| &l.answers).filter(|a| a.0 == 409).count(),
        latest.as_secs_f64() - outage_ended.as_secs_f64(),
    );
    for l in &landed {
        assert!(l.id.is_some(), "{} never landed: {:?}", l.request_id, l.answers);
        for (status, retry_after) in &l.answers {
            assert!(matches!(status, 200 | 201 | 409 | 503), "{}: answered {status}: {:?}", l.request_id, l.answers);
            assert!(*status < 400 || *retry_after, "{}: {status} without Retry-After", l.request_id);
        }
        assert!(l.at <= outage_ended + Duration::from_secs(5), "{} landed only {:?} in", l.request_id, l.at);
    }
    assert!(!retried.is_empty(), "the outage cut some creates off");
    // Exactly once: one operation per request id, however many attempts.
    let scope = longrun::model::Scope::parse("projects/outage-repeat").unwrap();
    let filter = longrun::store::ListFilter { scope: Some(scope), limit: 10_000, ..Default::default() };
    let stored = app.store.list_operations(&filter).await.unwrap();
    let mut ids: Vec<String> = stored.iter().map(|op| op.id.to_string()).collect();
    ids.sort();
    let mut answered: Vec<String> = landed.iter().filter_map(|l| l.id.clone()).collect();
    answered.sort();
    assert_eq!(ids, answered, "one operation per request id, and the one each retry was told");
}
