//! Abuse limits (SPEC §4): a token bucket per presented credential and,
//! optionally, per client address; long-polls and event streams count as
//! concurrent streams per credential instead of as requests. A refusal is a
//! 429 with `Retry-After` in the envelope of the dialect the path belongs to.
//!
//! The credential is keyed by a per-process keyed hash of what was
//! presented (never the secret itself), before authentication, so a flood
//! of made-up keys is limited by address and costs no store lookups.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Request;
use axum::http::HeaderMap;
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::http::bounds::STREAM_RETRY_AFTER;
use crate::http::error::CoreError;

/// How long a request body may take by default (`--body-timeout`).
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// How the limits are set (0 turns one off).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimitSettings {
    /// Requests per second per credential (bursts of twice that).
    pub per_credential: u32,
    /// Requests per second per client address (bursts of twice that).
    pub per_address: u32,
    /// Long-polls and event streams held at once per credential.
    pub streams_per_credential: u32,
    /// How long a request body may take to arrive, from the end of its head.
    pub body_timeout: Duration,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            per_credential: 1000,
            per_address: 0,
            streams_per_credential: 1000,
            body_timeout: DEFAULT_BODY_TIMEOUT,
        }
    }
}

/// The node's limiters.
pub struct Limits {
    settings: LimitSettings,
    per_credential: Option<DefaultKeyedRateLimiter<u64>>,
    per_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    streams: Mutex<HashMap<u64, Arc<Semaphore>>>,
    hasher: std::hash::RandomState,
}

impl Limits {
    /// Limiters for `settings`.
    pub fn new(settings: LimitSettings) -> Limits {
        let bucket = |per_second: u32| {
            let rate = NonZeroU32::new(per_second)?;
            let burst = NonZeroU32::new(per_second.saturating_mul(2)).unwrap_or(rate);
            Some(Quota::per_second(rate).allow_burst(burst))
        };
        Limits {
            settings,
            per_credential: bucket(settings.per_credential).map(DefaultKeyedRateLimiter::keyed),
            per_address: bucket(settings.per_address).map(DefaultKeyedRateLimiter::keyed),
            streams: Mutex::new(HashMap::new()),
            hasher: std::hash::RandomState::new(),
        }
    }

    /// The settings the limiters were made with.
    pub fn settings(&self) -> &LimitSettings {
        &self.settings
    }

    /// Forgets idle buckets and stream counters (called now and then).
    pub fn forget_idle(&self) {
        for limiter in self.per_credential.iter() {
            limiter.retain_recent();
        }
        for limiter in self.per_address.iter() {
            limiter.retain_recent();
        }
        // A counter with a permit out is shared by that permit.
        self.streams.lock().expect("streams lock").retain(|_, s| Arc::strong_count(s) > 1);
    }

    /// Takes one request from the buckets of `credential` and `address`.
    fn take_request(&self, credential: Option<u64>, address: Option<IpAddr>) -> Result<(), CoreError> {
        if let (Some(limiter), Some(address)) = (&self.per_address, address) {
            limiter
                .check_key(&address)
                .map_err(|not_until| too_many(not_until.wait_time_from(DefaultClock::default().now())))?;
        }
        if let (Some(limiter), Some(credential)) = (&self.per_credential, credential) {
            limiter
                .check_key(&credential)
                .map_err(|not_until| too_many(not_until.wait_time_from(DefaultClock::default().now())))?;
        }
        Ok(())
    }

    /// A slot for one held stream of `credential`, released when dropped.
    fn take_stream(&self, credential: u64) -> Result<Option<OwnedSemaphorePermit>, CoreError> {
        let Some(most) = NonZeroU32::new(self.settings.streams_per_credential) else { return Ok(None) };
        let semaphore = self
            .streams
            .lock()
            .expect("streams lock")
            .entry(credential)
            .or_insert_with(|| Arc::new(Semaphore::new(most.get() as usize)))
            .clone();
        semaphore.try_acquire_owned().map(Some).map_err(|_| too_many(STREAM_RETRY_AFTER))
    }

    fn credential_of(&self, headers: &HeaderMap) -> Option<u64> {
        let presented = crate::service::auth::bearer_token(headers)
            .or_else(|| headers.get("ocp-apim-subscription-key").and_then(|v| v.to_str().ok()))?;
        Some(self.hasher.hash_one(presented))
    }
}

fn too_many(wait: Duration) -> CoreError {
    CoreError::TooManyRequests { retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64 }
}

/// True for requests that hold a response open: long-polls and event streams.
pub fn is_stream<B>(request: &axum::http::Request<B>) -> bool {
    let path = request.uri().path();
    path.ends_with(":wait")
        || path.ends_with("/events")
        || path == crate::dialect::google::grpc::WAIT_METHOD
        || crate::service::watch::prefer_wait(request.headers()).is_some()
}

/// A stream slot, held until the response body ends.
pub type Slot = OwnedSemaphorePermit;

impl Limits {
    /// Admits a request or refuses it (429) before it does any work; a
    /// long-poll or event stream gets a slot to hold.
    pub fn admit(&self, request: &Request) -> Result<Option<Slot>, CoreError> {
        let credential = self.credential_of(request.headers());
        let address = crate::http::peer::peer_of(request).map(|peer| peer.ip());
        let stream = is_stream(request);
        self.take_request(credential.filter(|_| !stream), address)?;
        let slot = credential.filter(|_| stream).map(|c| self.take_stream(c)).transpose()?;
        Ok(slot.flatten())
    }
}

/// Keeps `slot` until `response`'s body ends (an event stream's whole
/// life). Every frame passes through, trailers too: a gRPC status travels in them.
pub fn hold(response: Response, slot: Slot) -> Response {
    response.map(|body| {
        axum::body::Body::new(http_body_util::BodyExt::map_frame(body, move |frame| {
            let _held = &slot;
            frame
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_gets_its_burst_then_a_retry_after() {
        let limits = Limits::new(LimitSettings {
            per_credential: 2,
            per_address: 0,
            streams_per_credential: 0,
            ..LimitSettings::default()
        });
        for _ in 0..4 {
            limits.take_request(Some(7), None).expect("a burst of twice the rate");
        }
        match limits.take_request(Some(7), None) {
            Err(CoreError::TooManyRequests { retry_after_secs }) => assert!(retry_after_secs >= 1),
            other => panic!("expected 429, got {other:?}"),
        }
        limits.take_request(Some(8), None).expect("another credential has its own bucket");
        limits.take_request(None, None).expect("no credential, no per-credential limit");
    }

    #[test]
    fn streams_are_counted_while_held() {
        let limits = Limits::new(LimitSettings {
            per_credential: 0,
            per_address: 0,
            streams_per_credential: 2,
            ..LimitSettings::default()
        });
        let first = limits.take_stream(1).unwrap();
        let _second = limits.take_stream(1).unwrap();
        assert!(limits.take_stream(1).is_err(), "a third stream waits for a slot");
        drop(first);
        assert!(limits.take_stream(1).unwrap().is_some(), "a finished stream frees its slot");
    }

    #[test]
    fn addresses_are_limited_when_asked() {
        let limits = Limits::new(LimitSettings {
            per_credential: 0,
            per_address: 1,
            streams_per_credential: 0,
            ..LimitSettings::default()
        });
        let address: IpAddr = "127.0.0.1".parse().unwrap();
        limits.take_request(None, Some(address)).unwrap();
        limits.take_request(None, Some(address)).unwrap();
        assert!(limits.take_request(None, Some(address)).is_err());
    }
}
