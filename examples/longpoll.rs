//! Long-poll fan-out benchmark (issue 6): holds N concurrent
//! `GET /v1/operations/{id}:wait` on one `longrun serve`, reports the
//! server's extra resident memory for them, then PATCHes a sample of the
//! operations one at a time and measures how long after each PATCH was
//! acknowledged its waiter got the answer (p50/p99).
//!
//! Usage (the server must be running, with an admin key):
//!   cargo run --release --example longpoll -- http://127.0.0.1:PORT KEY SERVER_PID [N] [SAMPLES]
//! Needs `ulimit -n` above N (each wait holds a connection).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn rss_kib(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (server, key, pid) = (args[1].clone(), args[2].clone(), args[3].clone());
    let n: usize = args.get(4).and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let samples: usize = args.get(5).and_then(|v| v.parse().ok()).unwrap_or(200).min(n);
    let client = reqwest::Client::builder().pool_max_idle_per_host(n + 16).build().unwrap();

    // N operations to wait on, created 64 at a time.
    let mut ids = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(64) {
        let creates = chunk.iter().map(|_| {
            client
                .post(format!("{server}/v1/operations"))
                .bearer_auth(&key)
                .json(&json!({"scope": "projects/longpoll", "kind": "deleteDevBox"}))
                .send()
        });
        for response in futures_util::future::join_all(creates).await {
            let body: Value = response.unwrap().json().await.unwrap();
            ids.push(body["id"].as_str().unwrap().to_owned());
        }
    }
    let before = rss_kib(&pid);

    // N waits, each answered by its own change (or the 60 s timeout).
    let mut waits = Vec::with_capacity(n);
    for id in &ids {
        let request = client.get(format!("{server}/v1/operations/{id}:wait?timeout=60s")).bearer_auth(&key).send();
        waits.push(tokio::spawn(async move {
            let response = request.await;
            (Instant::now(), response.map(|r| r.status().as_u16()).unwrap_or(0))
        }));
    }
    // Let every wait register (longer under a profiler: LONGPOLL_SETTLE_SECS).
    let settle = std::env::var("LONGPOLL_SETTLE_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    tokio::time::sleep(Duration::from_secs(settle)).await;
    let held = rss_kib(&pid);

    // PATCH a sample, one at a time; wake-up = waiter's answer − PATCH's ack.
    let mut wakeups = Vec::with_capacity(samples);
    let mut waits = waits.into_iter();
    for id in ids.iter().take(samples) {
        let wait = waits.next().unwrap();
        let patched = client
            .patch(format!("{server}/v1/operations/{id}"))
            .bearer_auth(&key)
            .json(&json!({"state": "Running", "percentComplete": 1}))
            .send()
            .await
            .unwrap();
        assert!(patched.status().is_success());
        let acked = Instant::now();
        let (answered, status) = wait.await.unwrap();
        assert_eq!(status, 200);
        wakeups.push(answered.saturating_duration_since(acked));
    }
    wakeups.sort();
    let extra_mib = held.saturating_sub(before) as f64 / 1024.0;
    println!(
        "{{\"waiters\": {n}, \"rss_before_mib\": {:.1}, \"rss_held_mib\": {:.1}, \"extra_mib\": {extra_mib:.1}, \
         \"samples\": {samples}, \"wakeup_p50_ms\": {:.3}, \"wakeup_p99_ms\": {:.3}}}",
        before as f64 / 1024.0,
        held as f64 / 1024.0,
        percentile(&wakeups, 0.5).as_secs_f64() * 1000.0,
        percentile(&wakeups, 0.99).as_secs_f64() * 1000.0
    );
    for wait in waits {
        wait.abort();
    }
}
