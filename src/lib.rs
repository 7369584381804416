//! longrun: a durable status service for long-running operations.
//!
//! Crate map, one layer calling only the one below it:

/// Domain types and transition rules; no I/O.
pub mod model;
/// The `Store` trait and its backends.
pub mod store;
