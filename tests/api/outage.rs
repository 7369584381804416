//! A PostgreSQL outage under load: requests get 503 with Retry-After (never
//! 500, never a hang) while the database is away, and the node serves again
//! by itself once it is back. Runs on a private PostgreSQL instance (initdb
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
    if postgres_url("a_database_outage_is_503_and_service_resumes_by_itself").is_none() {
        return;
    }
    let Some(pg) = PrivatePostgres::create() else {
        eprintln!(
            "SKIPPED a_database_outage_is_503_and_service_resumes_by_itself: needs root and PostgreSQL's server binaries"
        );
        return;
    };
    pg.start();
    let store = longrun::store::open(Some(&pg.url()), pg.path(), 8).await.unwrap();
    let app = Arc::new(TestApp::spawn_on(store, pg.path()).await);
    let id = id_of(&app.create_ok("projects/outage", "deleteDevBox").await);

    let started = Instant::now();
    let samples: Arc<Mutex<Vec<(Duration, u16, bool)>>> = Arc::default();
    let stop_load = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for worker in 0..WORKERS {
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
                let response = request.send().await.expect("no hang past the client timeout");
                let status = response.status();
                let retry_after = response.headers().contains_key("retry-after");
                samples.lock().unwrap().push((started.elapsed(), status.as_u16(), retry_after));
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
    let count = |f: &dyn Fn(&(Duration, u16, bool)) -> bool| samples.iter().filter(|s| f(s)).count();
    let ok = count(&|s| s.1 == 200);
    let unavailable = count(&|s| s.1 == 503);
    let other = count(&|s| s.1 != 200 && s.1 != 503);
    let last_503 = samples.iter().filter(|s| s.1 == 503).map(|s| s.0).max().unwrap_or_default();
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
        samples.iter().filter(|s| s.1 != 200 && s.1 != 503).take(5).collect::<Vec<_>>()
    );
    assert!(unavailable > 0, "the outage was noticed");
    assert!(samples.iter().filter(|s| s.1 == 503).all(|s| s.2), "every 503 carries Retry-After");
    let recovered_by = outage_ended + Duration::from_secs(5);
    for (at, status, _) in samples.iter() {
        if *status == 503 {
            assert!(*at >= outage_began && *at <= recovered_by, "503 at {at:?} outside the outage");
        }
    }
    assert!(served_for_a_second_since(&samples, outage_ended), "served again after the outage");
}

/// Whether the samples after `since` end in a whole second of nothing but 200s.
fn served_for_a_second_since(samples: &[(Duration, u16, bool)], since: Duration) -> bool {
    let last_failure = samples.iter().filter(|s| s.1 != 200).map(|s| s.0).max().unwrap_or_default().max(since);
    samples.iter().any(|s| s.1 == 200 && s.0 > last_failure + Duration::from_secs(1))
}
