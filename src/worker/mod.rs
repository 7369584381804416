//! A node's background work: due script steps, lease sweeps, purges and
//! webhook deliveries.

pub mod runner;
pub mod webhooks;
