//! The use-cases every front-end calls and the node's shared context:
//! operations, leases, long-poll waits, authentication, the clock.

pub mod auth;
pub mod clock;
pub mod demo;
pub mod leases;
pub mod operations;
pub mod paging;
pub mod state;
pub mod waiters;
pub mod watch;
