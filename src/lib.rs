//! longrun: a durable status service for long-running operations.
//!
//! Layers, each calling only the one below it:
//! front-ends (`api`, `dialect::*`) → use-cases (`ops`, `auth`) → `model` + `store`.

/// Native producer API (`/v1`).
pub mod api;
/// Wires front-ends and state into one HTTP server.
pub mod app;
/// API keys and principals.
pub mod auth;
/// Request bodies, read after authentication, on a deadline.
pub mod body;
/// Command-line definitions.
pub mod cli;
/// `longrun op …`: the binary as an API client.
pub mod client;
/// The service's clock (injectable for tests).
pub mod clock;
/// `serve` configuration.
pub mod config;
/// `longrun.toml`: flags written down, applied below environment and flags.
pub mod config_file;
/// Default scripts of `serve --demo`.
pub mod demo;
/// Client-facing Azure dialects: Sphere, Dev Center, Face.
pub mod dialect;
/// The error shared by every front-end.
pub mod error;
/// List-valued request headers: If-None-Match, Prefer.
pub mod headers;
/// Cross-cutting HTTP middleware.
pub mod http;
/// Worker leases: claim, heartbeat, complete, sweep.
pub mod leases;
/// Rate and stream limits per credential and address.
pub mod limits;
/// Prometheus metrics and readiness.
pub mod metrics;
/// Domain types and transition rules; no I/O.
pub mod model;
/// The OpenAPI document of every route.
pub mod openapi;
/// Use-cases shared by every front-end.
pub mod ops;
/// Background work: due emulator-script steps.
pub mod runner;
/// The accept loop: hyper with header timeouts and size limits.
pub mod server;
/// The `Store` trait and its backends.
pub mod store;
/// Logging set-up.
pub mod telemetry;
/// The dashboard's embedded page (`/ui`).
pub mod ui;
/// Who waits for which operation (long-poll fan-out).
pub mod waiters;
/// Long-poll: answer when an operation changes.
pub mod watch;
/// Webhook delivery from a durable outbox.
pub mod webhooks;
