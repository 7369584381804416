//! The accept loop: hyper (HTTP/1.1 and HTTP/2) with the limits
//! `axum::serve` does not expose. A client that trickles its request head
//! (slowloris) is cut after `HEADER_READ_TIMEOUT`; a head larger than
//! `MAX_HEAD_BYTES` is refused; each request knows its peer address (for
//! per-address rate limits); shutdown stops accepting, then waits a bounded
//! time (`--shutdown-grace`) for the requests in flight. With TLS, the
//! handshake must finish within the head timeout too, so a client that
//! opens TLS and stalls is cut off like one that stalls its head.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, Uri};
use axum::response::Response;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_util::either::Either;
use tower::ServiceExt;

use crate::http::bounds::HYPER_HEAD_BYTES;
use crate::server::tls::{Tls, negotiated_http2};

/// A request head (request line + headers) must arrive within this.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP/2 streams per connection: room for many long-polls on one
/// connection (a held HTTP/2 stream costs far less than an HTTP/1.1
/// connection: BENCHMARKS.md, long-poll fan-out).
pub const MAX_STREAMS_PER_CONNECTION: u32 = 2048;

/// Serves `router` on `listener` (over TLS when `tls` is given) until
/// `shutdown` resolves, then gives the requests in flight up to `grace`.
pub async fn serve<S>(
    listener: TcpListener,
    tls: Option<Arc<Tls>>,
    service: S,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> std::io::Result<()>
where
    S: tower::Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
        + Clone
        + Send
        + 'static,
{
    let mut http1 = http1::Builder::new();
    // half_close: a client that shuts its sending side after a complete
    // request still gets the answer.
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(HYPER_HEAD_BYTES)
        .half_close(true);
    let mut http2 = http2::Builder::new(TokioExecutor::new());
    http2
        .timer(TokioTimer::new())
        .max_header_list_size(HYPER_HEAD_BYTES as u32)
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION);
    let builders = Arc::new((http1, http2));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, usually: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = service.clone().map_request(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(axum::body::Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            if crate::server::limits::is_stream(&request) {
                detach_head(&mut request);
            }
            request
        });
        let service = TowerToHyperService::new(service);
        let (builders, watcher, tls) = (builders.clone(), graceful.watcher(), tls.clone());
        tokio::spawn(async move {
            let Some((stream, http2)) = open(stream, tls.as_deref()).await else {
                return; // gone, silent, or a failed handshake: nothing to serve
            };
            let outcome = if http2 {
                // Boxed: the HTTP/2 connection state is large, and unboxed
                // every HTTP/1.1 connection's task would be as large.
                Box::pin(watcher.watch(builders.1.serve_connection(TokioIo::new(stream), service))).await
            } else {
                watcher.watch(builders.0.serve_connection(TokioIo::new(stream), service)).await
            };
            if let Err(e) = outcome {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!(?grace, "requests still in flight at the end of the grace period; stopping");
    }
    Ok(())
}

/// A connection, plain or TLS (boxed: a TLS session is large, and plain
/// connections would carry its size otherwise).
type Connection = Either<TcpStream, Box<TlsStream<TcpStream>>>;

/// A new connection made ready for HTTP within the head timeout: its TLS
/// handshake done (ALPN tells HTTP/2), or a peek at its first bytes.
async fn open(stream: TcpStream, tls: Option<&Tls>) -> Option<(Connection, bool)> {
    let opened = async {
        match tls {
            None => speaks_http2(&stream).await.map(|http2| (Either::Left(stream), http2)),
            Some(tls) => {
                let stream = tls.accept(stream).await?;
                let http2 = negotiated_http2(&stream);
                Ok((Either::Right(Box::new(stream)), http2))
            }
        }
    };
    tokio::time::timeout(HEADER_READ_TIMEOUT, opened).await.ok()?.ok()
}

/// Whether a new connection speaks HTTP/2 (it opens with the prior-knowledge
/// preface) or HTTP/1.1. Peeks, consuming nothing: hyper-util's `auto`
/// builder reads the first 24 bytes into a buffer of its own and replays
/// them, so hyper's first read of the head returns those 24 bytes alone
/// and its second grows the 8 KiB read buffer to 16 KiB, for every
/// HTTP/1.1 connection (heaptrack, BENCHMARKS.md long-poll memory).
async fn speaks_http2(stream: &TcpStream) -> std::io::Result<bool> {
    const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let mut seen = [0u8; 24];
    loop {
        let n = stream.peek(&mut seen).await?;
        if n == 0 || seen[..n] != PREFACE[..n] {
            return Ok(false); // HTTP/1.1 (or closed: hyper sees the end)
        }
        if n == PREFACE.len() {
            return Ok(true);
        }
        // Part of the preface so far. A peek returns at once while
        // anything is unread, so wait a little for the rest (rare: clients
        // send the preface in one write).
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Gives a request that will be held open (a long-poll, an event stream)
/// its own copies of the URI and header values. hyper parses them as
/// slices of the connection's read buffer, so while the request lives the
/// whole 8 KiB buffer it was read into stays allocated, and hyper reserves
/// a fresh one to watch the connection: 16 KiB per held HTTP/1.1
/// connection instead of 8 (BENCHMARKS.md, long-poll memory). The copies
/// are a few hundred bytes; ordinary requests, answered at once, skip this.
fn detach_head(request: &mut Request) {
    if let Ok(uri) = Uri::try_from(request.uri().to_string()) {
        *request.uri_mut() = uri;
    }
    for value in request.headers_mut().values_mut() {
        if let Ok(mut copy) = HeaderValue::from_bytes(value.as_bytes()) {
            copy.set_sensitive(value.is_sensitive());
            *value = copy;
        }
    }
}
