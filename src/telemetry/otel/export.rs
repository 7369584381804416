//! The export pipeline: the SDK's batch processor and OTLP/HTTP exporter,
//! with a bound in front. Spans wait in a queue of at most
//! `OTEL_BSP_MAX_QUEUE_SIZE` (2048); past it, and for every span in a
//! batch the collector did not take, `longrun_otlp_spans_dropped_total`
//! counts one. A dead collector therefore costs the failed exports on the
//! exporter's own thread and a bounded queue, never the requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, Span, SpanData, SpanExporter, SpanProcessor};

/// Spans queued at most when `OTEL_BSP_MAX_QUEUE_SIZE` is unset (the SDK's default).
const DEFAULT_QUEUE: usize = 2048;
/// How long one export may take when `OTEL_EXPORTER_OTLP_TIMEOUT` is unset.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of a collector's answer read (OTLP answers are a few bytes).
const MAX_ANSWER: u64 = 4 << 20;

/// The processor exporting to `url`.
pub fn processor(url: &str) -> anyhow::Result<Bounded> {
    let limit =
        std::env::var("OTEL_BSP_MAX_QUEUE_SIZE").ok().and_then(|n| n.parse().ok()).unwrap_or(DEFAULT_QUEUE).max(1);
    if std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL").is_ok_and(|p| p != "http/protobuf") {
        anyhow::bail!(
            "OTEL_EXPORTER_OTLP_PROTOCOL: longrun exports OTLP over http/protobuf only (a collector's port 4318)"
        );
    }
    let timeout = std::env::var("OTEL_EXPORTER_OTLP_TIMEOUT")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(EXPORT_TIMEOUT, Duration::from_millis);
    let client = reqwest::blocking::Client::builder().timeout(timeout).build()?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(BlockingClient(client))
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .with_timeout(timeout)
        .build()?;
    let waiting = Arc::new(AtomicUsize::new(0));
    let counted = Counted { inner: exporter, waiting: waiting.clone() };
    let config = BatchConfigBuilder::default().with_max_queue_size(limit).build();
    let inner = BatchSpanProcessor::builder(counted).with_batch_config(config).build();
    Ok(Bounded { inner, waiting, limit })
}

/// Counts spans the collector never got. With the collector down that is
/// every span, so the counter's handle is looked up once (first used when a
/// span ends, after the server installed its recorder).
pub fn dropped(spans: usize) {
    static DROPPED: std::sync::LazyLock<metrics::Counter> =
        std::sync::LazyLock::new(|| metrics::counter!("longrun_otlp_spans_dropped_total"));
    DROPPED.increment(spans as u64);
}

/// The batch processor, refusing spans past `limit` waiting (queued or
/// being exported) so that every dropped span is counted here.
#[derive(Debug)]
pub struct Bounded {
    inner: BatchSpanProcessor,
    waiting: Arc<AtomicUsize>,
    limit: usize,
}

impl SpanProcessor for Bounded {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if self.waiting.fetch_add(1, Ordering::Relaxed) >= self.limit {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            dropped(1);
            return;
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The OTLP exporter, counting what it exported and what it lost.
#[derive(Debug)]
struct Counted<E> {
    inner: E,
    waiting: Arc<AtomicUsize>,
}

impl<E: SpanExporter> SpanExporter for Counted<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len();
        let outcome = self.inner.export(batch).await;
        self.waiting.fetch_sub(spans, Ordering::Relaxed);
        match &outcome {
            Ok(()) => {
                super::outage::export_succeeded();
                metrics::counter!("longrun_otlp_spans_exported_total").increment(spans as u64);
            }
            Err(error) => {
                super::outage::export_failed(error);
                dropped(spans);
            }
        }
        outcome
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The exporter's HTTP client: longrun's own reqwest (rustls, the
/// webpki roots) in its blocking form, for the batch processor's thread.
#[derive(Debug)]
struct BlockingClient(reqwest::blocking::Client);

#[async_trait::async_trait]
impl HttpClient for BlockingClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        use std::io::Read;
        let (head, body) = request.into_parts();
        let request = reqwest::blocking::Request::try_from(Request::from_parts(head, body.to_vec()))?;
        let mut answer = self.0.execute(request)?;
        let (status, headers) = (answer.status(), std::mem::take(answer.headers_mut()));
        let mut body = Vec::new();
        answer.take(MAX_ANSWER).read_to_end(&mut body)?;
        let mut response = Response::builder().status(status).body(Bytes::from(body))?;
        *response.headers_mut() = headers;
        Ok(response)
    }
}
