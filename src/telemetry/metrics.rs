//! The process's Prometheus recorder (the `metrics` facade): installed once
//! however many servers a process runs, with the latency buckets longrun
//! uses, a thread that folds recorded samples into histograms, and the
//! handles registered on it. The facade allows one recorder per process, so
//! this is the one process-wide value longrun keeps: every node in the
//! process records into it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, OnceLock};

use axum::http::StatusCode;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets (seconds): a status read should take well under a millisecond.
const BUCKETS: [f64; 14] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// The process's recorder and the handles registered on it. Handles are
/// registered once per label set: the `metrics` macros would build, hash
/// and look up the labels on every call.
pub struct Recorder {
    handle: PrometheusHandle,
    /// Per route template: its counters and histograms by dialect and status.
    routes: Mutex<BTreeMap<String, Vec<RouteMetrics>>>,
    /// `longrun_store_seconds` by backend and access.
    store: Mutex<Vec<(&'static str, &'static str, metrics::Histogram)>>,
    /// The (state, kind) gauges set so far: one that vanished must read 0.
    operation_gauges: Mutex<BTreeSet<(String, String)>>,
}

/// The request counter and latency histogram of one dialect, route and status.
#[derive(Clone)]
pub struct RouteMetrics {
    dialect: &'static str,
    status: StatusCode,
    /// `http_requests_total`.
    pub requests: metrics::Counter,
    /// `http_request_duration_seconds`.
    pub duration: metrics::Histogram,
}

/// The process's recorder, installed on first use.
pub fn recorder() -> &'static Recorder {
    static RECORDER: OnceLock<Recorder> = OnceLock::new();
    RECORDER.get_or_init(|| Recorder {
        handle: install(),
        routes: Mutex::new(BTreeMap::new()),
        store: Mutex::new(Vec::new()),
        operation_gauges: Mutex::new(BTreeSet::new()),
    })
}

impl Recorder {
    /// The Prometheus text of everything recorded.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// The metrics of one dialect, route template and status. Templates and
    /// statuses are few: this never grows past a few hundred entries.
    pub fn route(&self, dialect: &'static str, route: &str, status: StatusCode) -> RouteMetrics {
        let mut routes = self.routes.lock().expect("route metrics lock");
        if let Some(known) =
            routes.get(route).and_then(|k| k.iter().find(|m| m.dialect == dialect && m.status == status))
        {
            return known.clone();
        }
        let labels =
            [("dialect", dialect.to_owned()), ("route", route.to_owned()), ("status", status.as_str().to_owned())];
        let made = RouteMetrics {
            dialect,
            status,
            requests: metrics::counter!("http_requests_total", &labels),
            duration: metrics::histogram!("http_request_duration_seconds", &labels[..2]),
        };
        routes.entry(route.to_owned()).or_default().push(made.clone());
        made
    }

    /// The `longrun_store_seconds` histogram of one backend and access.
    pub fn store_call(&self, backend: &'static str, access: &'static str) -> metrics::Histogram {
        let mut registered = self.store.lock().expect("store metrics lock");
        if let Some((_, _, histogram)) = registered.iter().find(|(b, a, _)| *b == backend && *a == access) {
            return histogram.clone();
        }
        let histogram = metrics::histogram!("longrun_store_seconds", "backend" => backend, "access" => access);
        registered.push((backend, access, histogram.clone()));
        histogram
    }

    /// Sets `longrun_operations` to these (state, kind, count) triples; a
    /// pair counted before and absent now reads 0, not its last value.
    pub fn set_operation_counts(&self, counts: Vec<(String, String, i64)>) {
        let now: BTreeSet<(String, String)> =
            counts.iter().map(|(state, kind, _)| (state.clone(), kind.clone())).collect();
        let mut seen = self.operation_gauges.lock().expect("gauge labels lock");
        for (state, kind) in seen.difference(&now) {
            metrics::gauge!("longrun_operations", "state" => state.clone(), "kind" => kind.clone()).set(0.0);
        }
        for (state, kind, count) in counts {
            metrics::gauge!("longrun_operations", "state" => state, "kind" => kind).set(count as f64);
        }
        seen.extend(now);
    }
}

/// Installs the Prometheus recorder with longrun's buckets.
fn install() -> PrometheusHandle {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full("http_request_duration_seconds".into()), &BUCKETS)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full("longrun_store_seconds".into()), &BUCKETS))
        .expect("static buckets are valid")
        .install_recorder()
        .expect("the metrics recorder is installed once");
    metrics::gauge!("longrun_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    keep_up(handle.clone());
    handle
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
