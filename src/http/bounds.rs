//! The numbers the HTTP layer answers by, shared by the server that
//! enforces them and the OpenAPI document that shows them.

use std::time::Duration;

/// Largest request head accepted; larger → 431 in the dialect's envelope
/// (the front middleware measures it).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// hyper's own bound on a head: past it hyper answers a bare 431 itself,
/// before any route is known. Above `MAX_HEAD_BYTES` so that heads between
/// the two get the envelope.
pub const HYPER_HEAD_BYTES: usize = 4 * MAX_HEAD_BYTES;
/// How long a client refused a held stream is told to wait: a stream lasts
/// up to a minute (long-poll) or longer (events), so come back a little
/// later rather than at once.
pub const STREAM_RETRY_AFTER: Duration = Duration::from_secs(5);
/// Seconds a client should wait after a 503 or 507.
pub const UNAVAILABLE_RETRY_AFTER: &str = "2";
