//! The process's Prometheus recorder (the `metrics` facade): installed once
//! however many servers a process runs, with the latency buckets longrun
//! uses and a thread that folds recorded samples into histograms.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets (seconds): a status read should take well under a millisecond.
const BUCKETS: [f64; 14] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// The process's Prometheus recorder, installed on first use.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full("http_request_duration_seconds".into()), &BUCKETS)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full("longrun_store_seconds".into()), &BUCKETS))
            .expect("static buckets are valid")
            .install_recorder()
            .expect("the metrics recorder is installed once");
        metrics::gauge!("longrun_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        keep_up(handle.clone());
        handle
    })
}

/// How often recorded latencies are folded into their histograms.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Folds the latencies recorded since the last upkeep into the histograms,
/// every `UPKEEP_EVERY`, for the life of the process. The recorder keeps
/// every sample until then (8 bytes each, two per request), and only a
/// `/metrics` scrape would otherwise fold them: a server nobody scraped
/// grew by about 16 MB per million requests.
fn keep_up(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
        loop {
            std::thread::sleep(UPKEEP_EVERY);
            handle.run_upkeep();
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the metrics upkeep thread; latency samples wait for /metrics scrapes");
    }
}
