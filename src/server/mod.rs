//! The composition root: the router (the only place that names every
//! handler), the accept loop and its TLS, the front middleware, limits,
//! `/metrics` and `/openapi.json`.

pub mod accept;
pub mod app;
pub mod application;
pub mod dev_cert;
pub mod front;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod request_span;
pub mod tls;
