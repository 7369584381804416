//! longrun: a durable status service for long-running operations.
//!
//! Layers, top to bottom; each imports only the ones below it
//! (`tests/architecture.rs` keeps it so):
//! `cli` → `server` → `worker` → `api` → `dialect`, `ui` → `service` →
//! `http` → `store` → `telemetry` → `model`.

/// Native producer API (`/v1`).
pub mod api;
/// The command line: its definitions, `serve` configuration, `longrun op`.
pub mod cli;
/// Client-facing Azure dialects: Sphere, Dev Center, Face.
pub mod dialect;
/// The shared HTTP vocabulary: errors, headers, bodies, the caller.
pub mod http;
/// Domain types and transition rules; no I/O.
pub mod model;
/// The composition root: router, accept loop, front middleware, limits.
pub mod server;
/// Use-cases and the node's shared context.
pub mod service;
/// The `Store` trait and its backends.
pub mod store;
/// Logging set-up and the metrics recorder.
pub mod telemetry;
/// The dashboard's embedded page (`/ui`).
pub mod ui;
/// Background work: script steps, lease sweeps, purges, webhooks.
pub mod worker;
