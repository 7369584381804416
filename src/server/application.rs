//! A node, wired in one place: its shared context, its limits and its
//! listener, then served with the node's background work alongside. The
//! `serve` command and the tests both build nodes here; they differ only
//! in the parts they hand in.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::server::app::service;
use crate::server::limits::{LimitSettings, Limits};
use crate::server::tls::Tls;
use crate::service::auth::jwt::Tokens;
use crate::service::operations::Policy;
use crate::service::state::AppState;
use crate::store::Store;

/// How long a graceful shutdown waits for in-flight requests by default.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How often key last-used times are written (one batch per node).
const KEY_USAGE_FLUSH: Duration = Duration::from_secs(30);

/// What a node is made of.
pub struct Parts {
    /// Where operations and keys live.
    pub store: Arc<dyn Store>,
    /// Retention, attempts and the clock.
    pub policy: Arc<Policy>,
    /// Trusted bearer-token issuers.
    pub tokens: Tokens,
    /// Seconds pollers are told to wait (`Retry-After`).
    pub retry_after: u32,
    /// Whether emulated initiators run the demo script.
    pub demo: bool,
    /// Rate, stream and body limits.
    pub limits: LimitSettings,
    /// How long a graceful stop waits for requests in flight.
    pub grace: Duration,
    /// HTTPS instead of plain HTTP.
    pub tls: Option<Arc<Tls>>,
    /// Where google.longrunning.Operations is served over gRPC, if anywhere.
    pub grpc_listen: Option<SocketAddr>,
}

/// A node bound to its address, ready to serve.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    limits: Arc<Limits>,
    grace: Duration,
    tls: Option<Arc<Tls>>,
    grpc: Option<TcpListener>,
}

impl Application {
    /// Binds `listen` (port 0 picks a free one) and wires a node of `parts`.
    pub async fn bind(listen: SocketAddr, parts: Parts) -> std::io::Result<Application> {
        let listener = TcpListener::bind(listen).await?;
        let grpc = match parts.grpc_listen {
            Some(address) => Some(TcpListener::bind(address).await?),
            None => None,
        };
        let state = AppState {
            store: parts.store,
            policy: parts.policy,
            retry_after: parts.retry_after,
            demo: parts.demo,
            stopping: Default::default(),
            waiters: Default::default(),
            tokens: Arc::new(parts.tokens),
            key_usage: Default::default(),
        };
        let limits = Arc::new(Limits::new(parts.limits));
        Ok(Application { listener, state, limits, grace: parts.grace, tls: parts.tls, grpc })
    }

    /// The address it listens on.
    pub fn address(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The address of its gRPC listener, if it has one.
    pub fn grpc_address(&self) -> Option<SocketAddr> {
        self.grpc.as_ref().and_then(|listener| listener.local_addr().ok())
    }

    /// `https` or `http`: how clients reach it.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// The node's shared context.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then gives the requests in flight
    /// up to the grace period. Runs the node's background work (script
    /// steps, lease sweeps, purges, webhooks, long-poll fan-out) alongside.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let Application { listener, state, limits, grace, tls, grpc } = self;
        let grpc = grpc.map(|listener| {
            let service = crate::server::app::grpc_service(state.clone(), limits.clone());
            let stopping = state.stopping.clone();
            let stopped = async move { stopping.cancelled().await };
            tokio::spawn(crate::server::accept::serve(listener, tls.clone(), service, stopped, grace))
        });
        let background = tokio::spawn(crate::worker::runner::run(state.store.clone(), state.policy.clone()));
        let (waiters, feed) = (state.waiters.clone(), state.store.feed().subscribe());
        let dispatcher = tokio::spawn(async move { waiters.run(feed).await });
        let (forgetting, store, usage) = (limits.clone(), state.store.clone(), state.key_usage.clone());
        let housekeeping = tokio::spawn(async move {
            let mut every = tokio::time::interval(KEY_USAGE_FLUSH);
            loop {
                every.tick().await;
                forgetting.forget_idle();
                if let Err(e) = usage.flush(store.as_ref()).await {
                    tracing::warn!(error = %e, "cannot record when keys were last used; will retry");
                }
            }
        });
        let (store, usage) = (state.store.clone(), state.key_usage.clone());
        let stopping = state.stopping.clone();
        let shutdown = {
            let stopping = stopping.clone();
            async move {
                shutdown.await;
                stopping.cancel();
            }
        };
        // One router shared by every connection (`axum::serve` with a plain
        // `Router` rebuilt its route table per connection: ~14 KiB each,
        // measured with heaptrack, BENCHMARKS.md long-poll). Graceful, but
        // bounded by `grace`: a stuck client or an endless stream does not hold the stop.
        let served = crate::server::accept::serve(listener, tls, service(state, limits), shutdown, grace).await;
        if let Some(grpc) = grpc {
            // It stops with the HTTP side (the same token); calls in flight get the same grace.
            let _ = tokio::time::timeout(grace, grpc).await;
        }
        background.abort();
        dispatcher.abort();
        housekeeping.abort();
        if let Err(e) = usage.flush(store.as_ref()).await {
            tracing::warn!(error = %e, "cannot record when keys were last used");
        }
        served
    }
}
